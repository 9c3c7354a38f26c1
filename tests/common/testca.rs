//! A throwaway CA for feeding CT logs certificates of every shape (valid, expired,
//! precertificates, wrong EKU).

use brevis::ca::{LocalSigner, SigningAlgorithm};
use brevis::model::pem;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub struct TestCa {
    pub root_der: Vec<u8>,
    params: CertificateParams,
    signer: LocalSigner,
    leaf_key: LocalSigner,
}

/// What kind of certificate to make.
#[derive(Clone, Copy)]
pub struct Leaf {
    pub precert: bool,
    pub code_signing: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: u64,
}

impl Leaf {
    pub fn precert(serial: u64) -> Leaf {
        let now = OffsetDateTime::now_utc();
        Leaf {
            precert: true,
            code_signing: true,
            not_before: now - Duration::seconds(5),
            not_after: now + Duration::minutes(10),
            serial,
        }
    }

    pub fn certificate(serial: u64) -> Leaf {
        Leaf {
            precert: false,
            ..Leaf::precert(serial)
        }
    }
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let signer = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
        let root = params.self_signed(&signer).unwrap();
        TestCa {
            root_der: root.der().to_vec(),
            params,
            signer,
            leaf_key: LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap(),
        }
    }

    pub fn root_pem(&self) -> String {
        pem::certificate(&self.root_der)
    }

    pub fn write_root(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("roots.pem");
        std::fs::write(&p, self.root_pem()).unwrap();
        p
    }

    /// A leaf signed directly by the root.
    pub fn issue(&self, leaf: Leaf) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::Rfc822Name(
            format!("user{}@example.com", leaf.serial)
                .try_into()
                .unwrap(),
        )];
        p.serial_number = Some(SerialNumber::from_slice(
            &[&[0x01u8][..], &leaf.serial.to_be_bytes()].concat(),
        ));
        p.not_before = leaf.not_before;
        p.not_after = leaf.not_after;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if leaf.code_signing {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        } else {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        p.use_authority_key_identifier_extension = true;
        if leaf.precert {
            let mut poison = CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3],
                vec![0x05, 0x00],
            );
            poison.set_criticality(true);
            p.custom_extensions = vec![poison];
        }
        let issuer = Issuer::from_params(&self.params, &self.signer);
        p.signed_by(&self.leaf_key, &issuer).unwrap().der().to_vec()
    }
}

/// A root and an intermediate fit for `--ca fileca` whose intermediate expires at
/// `intermediate_not_after`; writes `chain.pem` and `key.pem` into `dir`.
pub fn fileca_chain(
    dir: &std::path::Path,
    intermediate_not_after: OffsetDateTime,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let now = OffsetDateTime::now_utc();
    let root_key = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let mut root = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "expiring root");
    root.distinguished_name = dn;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = now - Duration::days(1);
    root.not_after = now + Duration::days(365);
    let root_der = root.self_signed(&root_key).unwrap().der().to_vec();
    let key = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let mut inter = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "expiring intermediate");
    inter.distinguished_name = dn;
    inter.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    inter.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    inter.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    inter.use_authority_key_identifier_extension = true;
    inter.not_before = now - Duration::hours(1);
    inter.not_after = intermediate_not_after;
    let issuer = Issuer::from_params(&root, &root_key);
    let inter_der = inter.signed_by(&key, &issuer).unwrap().der().to_vec();
    let chain = dir.join("chain.pem");
    std::fs::write(
        &chain,
        format!(
            "{}{}",
            pem::certificate(&inter_der),
            pem::certificate(&root_der)
        ),
    )
    .unwrap();
    let key_path = dir.join("key.pem");
    std::fs::write(
        &key_path,
        pem::encode("PRIVATE KEY", &key.to_pkcs8().unwrap()),
    )
    .unwrap();
    (chain, key_path)
}
