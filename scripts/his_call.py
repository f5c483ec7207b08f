#!/usr/bin/env python3
"""One signed call of the national interface, as a HIS makes it (standard library only).

    python3 scripts/his_call.py --url http://127.0.0.1:8080 --paasid his_suizhou \
        --token-file token.txt --infno 2207 --input examples/national/2207.json \
        --mdtrtarea 421300 --insuplc 360100 --fixmedins H42130200746

Prints the national answer (JSON) and exits 0 when infcode is 0, 1 otherwise. --cafile trusts a
private CA for https:// URLs. A 9102 download answers the file itself: it is written to --out (default:
the name the gateway gives) and its path printed.
"""
import argparse
import hashlib
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

PATH = "/fsi/api/rsfComIfsService/callService"


def x_tif_headers(paasid: str, token: str) -> dict:
    """x-tif-signature = lowercase hex SHA-256 of timestamp + token + nonce + timestamp."""
    timestamp = str(int(time.time()))
    nonce = uuid.uuid4().hex
    signature = hashlib.sha256((timestamp + token + nonce + timestamp).encode()).hexdigest()
    return {"x-tif-paasid": paasid, "x-tif-timestamp": timestamp, "x-tif-nonce": nonce, "x-tif-signature": signature}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--paasid", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--infno", required=True)
    p.add_argument("--input", help="JSON file with the transaction's input (default {})")
    p.add_argument("--msgid", help="default: institution code + time + 4 digits, as the national msgid")
    p.add_argument("--mdtrtarea", required=True, help="mdtrtarea_admvs: the service location")
    p.add_argument("--insuplc", default="", help="insuplc_admdvs: the insured region")
    p.add_argument("--fixmedins", default="H42130200746")
    p.add_argument("--cafile")
    p.add_argument("--out", help="where a 9102 download is written (default: the file's own name)")
    a = p.parse_args()

    token = open(a.token_file).read().strip()
    now = datetime.now(timezone(timedelta(hours=8)))
    envelope = {
        "infno": a.infno,
        "msgid": a.msgid or a.fixmedins + now.strftime("%Y%m%d%H%M%S") + "%04d" % (int(time.time() * 1000) % 10000),
        "mdtrtarea_admvs": a.mdtrtarea,
        "insuplc_admdvs": a.insuplc,
        "recer_sys_code": "HIS",
        "infver": "V1.0",
        "opter_type": "1",
        "opter": "001",
        "opter_name": "cashier",
        "inf_time": now.strftime("%Y-%m-%d %H:%M:%S"),
        "fixmedins_code": a.fixmedins,
        "fixmedins_name": "",
        "sign_no": "",
        "input": json.load(open(a.input)) if a.input else {},
    }
    headers = {"Content-Type": "application/json;charset=utf-8", **x_tif_headers(a.paasid, token)}
    req = urllib.request.Request(a.url + PATH, data=json.dumps(envelope).encode(), headers=headers, method="POST")
    ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else None
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            if "json" not in r.headers.get("Content-Type", ""):
                # 9102: the body is the file, not the envelope.
                name = a.out or r.headers.get_filename() or "download.bin"
                with open(name, "wb") as f:
                    f.write(r.read())
                print(name)
                return 0
            answer = json.load(r)
    except urllib.error.HTTPError as e:
        answer = json.load(e)
        print(f"HTTP {e.code}", file=sys.stderr)
    json.dump(answer, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0 if answer.get("infcode") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
