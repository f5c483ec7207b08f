#!/usr/bin/env python3
"""Writes the sample catalogues in region-adapter/rules/ (one per seed region).

The seeds contain no catalogue, so every catalogue here is a SAMPLE: national-style codes and real
item names, invented prices and caps. Each has every class (甲/乙/丙), items with and without a unit
price cap, and one item whose cap changed on 2024-01-01 (two dated versions).
Run: python3 scripts/gen_sample_catalogues.py  (idempotent; the output is committed)
"""
from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

# code, name, list_type, class, selfpay_prop, cap (yuan per unit) or None
ITEMS = [
    ("XC08CAA017A0", "苯磺酸氨氯地平片", "101", "01", None, "1.20"),
    ("XA10BAE056A0", "盐酸二甲双胍片", "101", "01", None, "0.60"),
    ("XC10AAA035A0", "阿托伐他汀钙片", "101", "02", "0.10", "2.50"),
    ("XJ01CAA040B0", "阿莫西林胶囊", "101", "01", None, None),
    ("XJ01DCT176A0", "头孢呋辛酯片", "101", "02", "0.10", "3.80"),
    ("XN02BEA030A0", "对乙酰氨基酚片", "101", "01", None, None),
    ("XM01AEB053A0", "布洛芬缓释胶囊", "101", "01", None, "0.90"),
    ("XA02BCA210A0", "奥美拉唑肠溶胶囊", "101", "02", "0.05", "1.10"),
    ("XC09CAX074A0", "缬沙坦胶囊", "101", "02", "0.10", "1.60"),
    ("XR06AXL015A0", "氯雷他定片", "101", "02", "0.10", None),
    ("XB01ACA056A0", "阿司匹林肠溶片", "101", "01", None, None),
    ("XA10AEG052B0", "甘精胰岛素注射液", "101", "02", "0.15", "98.00"),
    ("XL01XEY043A0", "甲磺酸伊马替尼片", "101", "02", "0.20", "45.00"),
    ("XB06ACL388B0", "拉那利尤单抗注射液", "101", "02", "0.30", "4800.00"),
    ("XR05CBA120A0", "盐酸氨溴索片", "101", "02", "0.05", None),
    ("XH02ABP061A0", "醋酸泼尼松片", "101", "01", None, None),
    ("XC07ABM043A0", "琥珀酸美托洛尔缓释片", "101", "01", None, "1.90"),
    ("XN05BAL041A0", "劳拉西泮片", "101", "02", "0.10", None),
    ("XS01AAK072A0", "左氧氟沙星滴眼液", "101", "02", "0.10", "18.00"),
    ("XD07ACM108A0", "糠酸莫米松乳膏", "101", "02", "0.10", "25.00"),
    ("XA11CCA204A0", "阿法骨化醇软胶囊", "101", "02", "0.10", None),
    ("XG04CAT046A0", "盐酸坦索罗辛缓释胶囊", "101", "02", "0.10", "3.20"),
    ("ZA01BAS0012A", "连花清瘟胶囊", "101", "02", "0.10", "0.55"),
    ("ZA06AAH0078A", "复方丹参滴丸", "101", "01", None, None),
    ("ZA12BAJ0230A", "六味地黄丸", "101", "01", None, None),
    ("ZB01AAB0041A", "板蓝根颗粒", "101", "01", None, "1.00"),
    ("ZA15CAG0098A", "血塞通软胶囊", "101", "02", "0.10", None),
    ("ZZ99ZZL0001A", "灵芝孢子粉胶囊", "101", "03", None, None),
    ("XV06DXP001A0", "营养强化蛋白粉", "101", "03", None, None),
    ("001102000010000", "普通门诊诊查费", "201", "01", None, "10.00"),
    ("001102000020000", "副主任医师门诊诊查费", "201", "01", None, "25.00"),
    ("002501000010000", "血细胞分析(血常规)", "201", "01", None, "20.00"),
    ("002503020010000", "肝功能检查", "201", "01", None, None),
    ("002102010010000", "数字化X线摄影(DR)", "201", "01", None, "70.00"),
    ("002103030010000", "X线计算机体层(CT)平扫", "201", "02", "0.10", "200.00"),
    ("002103040010000", "磁共振(MR)平扫", "201", "02", "0.20", "450.00"),
    ("003101000010000", "常规心电图检查", "201", "01", None, "25.00"),
    ("002101030010000", "彩色多普勒超声常规检查", "201", "02", "0.10", None),
    ("001204000010000", "静脉输液", "201", "01", None, "8.00"),
    ("001201000010000", "肌肉注射", "201", "01", None, None),
    ("003111010010000", "电子胃镜检查", "201", "02", "0.10", "300.00"),
    ("004100000010000", "普通针刺", "201", "02", "0.10", None),
    ("003201000010000", "健康体检", "201", "03", None, None),
    ("004800000010000", "美容性皮肤治疗", "201", "03", None, None),
    ("C14010109900000305670000012", "一次性使用输液器", "301", "02", "0.10", "5.00"),
    ("C03011503100000112340000001", "医用胶带", "301", "01", None, None),
    ("C02020100100000203450000003", "一次性使用无菌注射器", "301", "01", None, "1.50"),
    ("C31020000000000409870000002", "弹性护膝(非治疗用)", "301", "03", None, None),
]

# Spending no personal account may pay (Suizhou art. 16, Jiangsu 000, Shanxi 001): code → kind.
# What supervision counts apart (Nanchang 002 §4(五) watches the share of examinations, 检查费用占比):
# imaging, ECG, ultrasound and endoscopy are examinations; blood and liver tests are laboratory tests (化验).
CATEGORY = {
    "002501000010000": "lab",
    "002503020010000": "lab",
    "002102010010000": "examination",
    "002103030010000": "examination",
    "002103040010000": "examination",
    "003101000010000": "examination",
    "002101030010000": "examination",
    "003111010010000": "examination",
}

ACCOUNT_EXCLUDED = {
    "004600000010000": "wellness",
}
ITEMS.append(("004600000010000", "中医养生保健调理(非治疗)", "201", "03", None, None))

# 医疗收费项目类别 (med_chrgitm_type, the national dictionary): 02 诊察费, 03 检查费, 04 化验费, 05 治疗费,
# 08 卫生材料费, 09 西药费, 11 中成药费, 14 其他费 (01 床位费, 06 手术费, 07 护理费, 10 中药饮片费, 12 一般诊疗费
# and 13 挂号费 have no item here). Drugs by their code's first letter, consumables by C, services as below.
TREATMENTS = {"001204000010000", "001201000010000", "004100000010000", "004800000010000"}


def chrgitm_type(code):
    if code.startswith("X"):
        return "09"
    if code.startswith("Z"):
        return "11"
    if code.startswith("C"):
        return "08"
    if CATEGORY.get(code) == "lab":
        return "04"
    if CATEGORY.get(code) == "examination":
        return "03"
    if code.startswith("0011"):
        return "02"
    if code in TREATMENTS:
        return "05"
    return "14"


# 限制使用标志 (lmt_used_flag): drugs whose payment the list limits to stated conditions (insulin glargine,
# imatinib, the antibody, a patent medicine) — sample flags, like the prices.
RESTRICTED = {"XA10AEG052B0", "XL01XEY043A0", "XB06ACL388B0", "ZA01BAS0012A"}

# (admdvs, file stem, name, cap factor): caps differ by region, as real catalogues do.
REGIONS = [
    ("421300", "421300-suizhou", "随州市", "1.00"),
    ("360100", "360100-nanchang", "南昌市", "1.05"),
    ("150500", "150500-tongliao", "通辽市", "0.95"),
    ("320100", "320100-nanjing", "南京市", "1.15"),
    ("140100", "140100-taiyuan", "太原市", "1.00"),
]

# The code whose cap changed on 2024-01-01 (a second dated version), to exercise validity dates.
CHANGED = "XA10AEG052B0"


def money(v):
    return str(Decimal(v).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def item(code, name, lt, cls, prop, cap, begin, end=None):
    out = [
        "[[item]]",
        f'hilist_code = "{code}"',
        f'hilist_name = "{name}"',
        f'list_type = "{lt}"',
        f'chrgitm_lv = "{cls}"',
    ]
    if prop is not None:
        out.append(f'selfpay_prop = "{prop}"')
    if cap is not None:
        out.append(f'pric_uplmt_amt = "{cap}"')
    out.append(f'begndate = "{begin}"')
    if end:
        out.append(f'enddate = "{end}"')
    if code in ACCOUNT_EXCLUDED:
        out.append(f'account_excluded = "{ACCOUNT_EXCLUDED[code]}"')
    if code in CATEGORY:
        out.append(f'category = "{CATEGORY[code]}"')
    out.append(f'med_chrgitm_type = "{chrgitm_type(code)}"')
    if code in RESTRICTED:
        out.append('lmt_used_flag = "1"')
    return "\n".join(out) + "\n"


def main():
    rules = Path(__file__).resolve().parent.parent / "region-adapter" / "rules"
    for adm, stem, name, factor in REGIONS:
        parts = [
            "# SAMPLE catalogue: national-style codes and real item names, invented prices and caps.\n"
            "# Generated by scripts/gen_sample_catalogues.py; replace with the region's published catalogue.\n"
            "format_version = 1\n\n[catalogue]\n"
            f'admdvs = "{adm}"\nsample = true\n'
            f'provenance = {{ assumption = "sample catalogue for {name}: the seeds contain no catalogue; prices and caps are invented" }}\n\n'
        ]
        for code, iname, lt, cls, prop, cap in ITEMS:
            scaled = money(Decimal(cap) * Decimal(factor)) if cap else None
            if code == CHANGED:
                old = money(Decimal(scaled) * Decimal("1.25"))
                parts.append(item(code, iname, lt, cls, prop, old, "2020-01-01", "2023-12-31"))
                parts.append(item(code, iname, lt, cls, prop, scaled, "2024-01-01"))
            else:
                parts.append(item(code, iname, lt, cls, prop, scaled, "2020-01-01"))
        (rules / f"{stem}.catalogue.toml").write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
