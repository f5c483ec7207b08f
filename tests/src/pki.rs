//! A throwaway PKI for TLS tests: a client/server CA, server certificates for loopback, and client
//! certificates naming a role and region (`urn:clearinghouse:<role>:<admdvs>`), expired ones included.
//! Generated with rcgen in a temporary directory; nothing is checked in.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use std::path::PathBuf;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// PEM files of one certificate and its key.
#[derive(Clone, Debug)]
pub struct Pem {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate's serial number (what a CRL names).
    pub serial: u64,
}

pub struct Pki {
    pub dir: tempfile::TempDir,
    name: String,
    ca: CertifiedIssuer<'static, KeyPair>,
    serial: std::cell::Cell<u32>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(p, key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("ca.key"), key_pem).unwrap();
        Pki { dir, name: name.into(), ca, serial: std::cell::Cell::new(0) }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn issue(&self, cn: &str, mut p: CertificateParams, expired: bool) -> Pem {
        p.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let n = self.serial.get() + 1;
        self.serial.set(n);
        let serial = 0x1000 + n as u64;
        p.serial_number = Some(rcgen::SerialNumber::from(serial));
        let cert = p.signed_by(&key, &self.ca).unwrap();
        let pem = Pem {
            cert: self.dir.path().join(format!("{}-{n}.pem", self.name)),
            key: self.dir.path().join(format!("{}-{n}.key", self.name)),
            serial,
        };
        std::fs::write(&pem.cert, cert.pem()).unwrap();
        std::fs::write(&pem.key, key.serialize_pem()).unwrap();
        pem
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self, cn: &str) -> Pem {
        let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(cn, p, false)
    }

    /// A client certificate; `san` is the identity (`"platform:420000"`), `None` for none.
    pub fn client(&self, cn: &str, san: Option<&str>, expired: bool) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        if let Some(s) = san {
            p.subject_alt_names.push(SanType::URI(format!("urn:clearinghouse:{s}").try_into().unwrap()));
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(cn, p, expired)
    }

    /// A CRL of this CA revoking `revoked` (none: an empty CRL), numbered `number`; PEM, or DER when `der`.
    pub fn crl(&self, number: u64, revoked: &[&Pem], der: bool) -> Vec<u8> {
        let params = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|p| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(p.serial),
                    revocation_time: rcgen::date_time_ymd(2024, 1, 2),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.ca).unwrap();
        if der { crl.der().to_vec() } else { crl.pem().unwrap().into_bytes() }
    }

    /// The same CRL as an operator makes it with the openssl CLI (`openssl ca -gencrl`, from a CA database
    /// listing `revoked`), PEM: what a real PKI hands the servers.
    pub fn openssl_crl(&self, revoked: &[&Pem]) -> Vec<u8> {
        let d = self.dir.path().join(format!("openssl-{}", self.serial.get()));
        std::fs::create_dir_all(&d).unwrap();
        let index: String = revoked
            .iter()
            .map(|p| format!("R\t991231235959Z\t240102000000Z,keyCompromise\t{:X}\tunknown\t/CN=revoked\n", p.serial))
            .collect();
        std::fs::write(d.join("index.txt"), index).unwrap();
        std::fs::write(d.join("crlnumber"), "1000\n").unwrap();
        let conf = format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = {db}\ncrlnumber = {num}\ndefault_md = sha256\ndefault_crl_days = 30\n",
            db = d.join("index.txt").display(),
            num = d.join("crlnumber").display()
        );
        std::fs::write(d.join("ca.cnf"), conf).unwrap();
        let out = d.join("crl.pem");
        let r = std::process::Command::new("openssl")
            .args(["ca", "-gencrl", "-batch", "-config"])
            .arg(d.join("ca.cnf"))
            .arg("-keyfile")
            .arg(self.dir.path().join("ca.key"))
            .arg("-cert")
            .arg(self.ca())
            .arg("-out")
            .arg(&out)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert!(r.status.success(), "openssl ca -gencrl: {}", String::from_utf8_lossy(&r.stderr));
        std::fs::read(out).unwrap()
    }

    /// `serve` arguments for a server certificate of this CA that requires clients of this CA.
    pub fn server_args(&self, server: &Pem) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            server.cert.display().to_string(),
            "--tls-key".into(),
            server.key.display().to_string(),
            "--tls-client-ca".into(),
            self.ca().display().to_string(),
        ]
    }
}

/// A TLS channel to `addr` trusting `ca`, presenting `client` (or no certificate).
pub async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    client: Option<&Pem>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap())).domain_name("localhost");
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(std::fs::read(&c.cert).unwrap(), std::fs::read(&c.key).unwrap()));
    }
    Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls)?.connect().await
}
