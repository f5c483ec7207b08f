//! Codes of the national interface: division codes (`admdvs`), catalogue codes (`hilist_code`),
//! institution levels and visit types. Each is parsed once, at the edge, into a small value type.

use std::fmt;

/// A 6-digit administrative division code (`admdvs`): `421300` Suizhou, `420000` Hubei province.
/// Stored as its number so it is `Copy` and hashes cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Admdvs(u32);

impl Admdvs {
    /// The central clearing account of netting instructions (`"000000"`).
    pub const CENTRAL: Admdvs = Admdvs(0);

    /// Parses exactly six ASCII digits whose first two name a province (11..=82), or `000000`.
    pub fn parse(s: &str) -> Option<Admdvs> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = s.parse().ok()?;
        if n == 0 {
            return Some(Admdvs::CENTRAL);
        }
        let province = n / 10_000;
        (11..=82).contains(&province).then_some(Admdvs(n))
    }

    /// The two-digit province prefix: `42` for every Hubei code.
    pub fn province_prefix(self) -> u32 {
        self.0 / 10_000
    }

    /// The province's own code: `421300` → `420000`.
    pub fn province(self) -> Admdvs {
        Admdvs(self.province_prefix() * 10_000)
    }

    /// True for a province-level code (`xx0000`).
    pub fn is_province(self) -> bool {
        self.0.is_multiple_of(10_000) && self.0 != 0
    }

    /// True when `self` is `other` or a province that contains it (a filing for `420000` covers
    /// every Hubei city).
    pub fn covers(self, other: Admdvs) -> bool {
        self == other || (self.is_province() && self.province_prefix() == other.province_prefix())
    }

    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Admdvs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// The kind of a catalogue code, recognised by its national format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// Western or Chinese patent drug, e.g. `XB06ACL388B0` (X/Z + 11 letters and digits).
    Drug,
    /// Medical service item, 15 digits, e.g. `110200001000000`.
    Service,
    /// Medical consumable, `C` + 26 digits.
    Consumable,
}

/// Recognises a national-style catalogue code; `None` means malformed (not merely unknown).
pub fn code_kind(code: &str) -> Option<CodeKind> {
    let b = code.as_bytes();
    match (b.first(), b.len()) {
        (Some(b'X' | b'Z'), 12) if b[1..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) => Some(CodeKind::Drug),
        (Some(b'C'), 27) if b[1..].iter().all(u8::is_ascii_digit) => Some(CodeKind::Consumable),
        (Some(c), 15) if c.is_ascii_digit() && b.iter().all(u8::is_ascii_digit) => Some(CodeKind::Service),
        _ => None,
    }
}

/// Institution level (医疗机构等级) 1, 2 or 3; level 1 includes community stations (Suizhou art. 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

impl Level {
    pub fn new(n: u32) -> Option<Level> {
        (1..=3).contains(&n).then_some(Level(n as u8))
    }
    /// 0-based index into per-level arrays.
    pub fn index(self) -> usize {
        (self.0 - 1) as usize
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.0)
    }
}

/// Visit type (`med_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MedType {
    /// `11` general outpatient.
    GeneralOutpatient,
    /// `13` emergency, paid as general outpatient (Suizhou art. 7: 普通门诊(含急诊)).
    Emergency,
    /// `14` chronic/special disease outpatient, with a disease code (门诊慢特病).
    ChronicDisease,
    /// `41` retail pharmacy filling an external prescription (外配处方).
    Pharmacy,
}

impl MedType {
    pub fn parse(s: &str) -> Option<MedType> {
        Some(match s {
            "11" => MedType::GeneralOutpatient,
            "13" => MedType::Emergency,
            "14" => MedType::ChronicDisease,
            "41" => MedType::Pharmacy,
            _ => return None,
        })
    }
    pub fn code(self) -> &'static str {
        match self {
            MedType::GeneralOutpatient => "11",
            MedType::Emergency => "13",
            MedType::ChronicDisease => "14",
            MedType::Pharmacy => "41",
        }
    }
}

/// Checks a designated-institution code: `H`/`P` (hospital/pharmacy) + 6-digit admdvs + 5 digits,
/// e.g. `H42130200746`. Returns the admdvs embedded in it.
pub fn parse_fixmedins_code(code: &str) -> Option<(char, Admdvs)> {
    let b = code.as_bytes();
    if b.len() != 12 || !matches!(b[0], b'H' | b'P') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    // The embedded division may be a county (421302) of the city (421300): keep it as written.
    let adm = Admdvs::parse(&code[1..7])?;
    Some((b[0] as char, adm))
}

/// The groups who may file for treatment elsewhere (Suizhou art. 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilingGroup {
    /// 异地安置退休人员.
    RelocatedRetiree,
    /// 异地长期居住人员.
    LongTermResident,
    /// 常驻异地工作人员.
    PostedWorker,
}

impl FilingGroup {
    pub fn parse(s: &str) -> Option<FilingGroup> {
        Some(match s {
            "relocated_retiree" => FilingGroup::RelocatedRetiree,
            "long_term_resident" => FilingGroup::LongTermResident,
            "posted_worker" => FilingGroup::PostedWorker,
            _ => return None,
        })
    }
    pub fn code(self) -> &'static str {
        match self {
            FilingGroup::RelocatedRetiree => "relocated_retiree",
            FilingGroup::LongTermResident => "long_term_resident",
            FilingGroup::PostedWorker => "posted_worker",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            FilingGroup::RelocatedRetiree => "异地安置退休人员",
            FilingGroup::LongTermResident => "异地长期居住人员",
            FilingGroup::PostedWorker => "常驻异地工作人员",
        }
    }
}

/// Whether `s` is a 医疗收费项目类别 (`med_chrgitm_type`) of the national dictionary: two ASCII digits,
/// `01` (床位费) to `14` (其他费).
pub fn is_charge_type(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) && matches!(s.parse::<u8>(), Ok(1..=14))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admdvs_parse_and_cover() {
        let suizhou = Admdvs::parse("421300").unwrap();
        let hubei = Admdvs::parse("420000").unwrap();
        assert_eq!(suizhou.to_string(), "421300");
        assert!(hubei.covers(suizhou));
        assert!(!suizhou.covers(hubei));
        assert_eq!(suizhou.province(), hubei);
        assert!(Admdvs::parse("42130").is_none());
        assert!(Admdvs::parse("991300").is_none());
        assert!(Admdvs::parse("42a300").is_none());
        assert_eq!(Admdvs::parse("000000"), Some(Admdvs::CENTRAL));
    }

    #[test]
    fn catalogue_codes_by_national_format() {
        assert_eq!(code_kind("XB06ACL388B0"), Some(CodeKind::Drug));
        assert_eq!(code_kind("ZA01AAT0013X"), Some(CodeKind::Drug));
        assert_eq!(code_kind("110200001000000"), Some(CodeKind::Service));
        assert_eq!(code_kind("C02010100101001031800000000"), Some(CodeKind::Consumable));
        assert_eq!(code_kind("xb06acl388b0"), None);
        assert_eq!(code_kind("11020000100000"), None);
        assert_eq!(code_kind(""), None);
        assert_eq!(parse_fixmedins_code("H42130200746").map(|(k, a)| (k, a.to_string())), Some(('H', "421302".into())));
        assert!(parse_fixmedins_code("H4213020074").is_none());
    }
}
