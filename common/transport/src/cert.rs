//! What a certificate says of itself, read the one way every part of vcp
//! reads it: the serial as the supervisor records and revokes it, the
//! validity, and the DNS names that carry an identity.

/// A certificate's serial, validity and DNS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The serial number's bytes in lower-case hex, no separators.
    pub serial: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// Its subject alternative names of DNS type.
    pub dns_names: Vec<String>,
}

/// Reads the DER certificate `der`; the parser's complaint if it cannot.
pub fn facts(der: &[u8]) -> Result<Facts, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let san = cert.subject_alternative_name().map_err(|e| e.to_string())?;
    let dns_names = san
        .iter()
        .flat_map(|s| &s.value.general_names)
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect();
    let v = cert.validity();
    Ok(Facts {
        serial: cert.raw_serial_as_string().replace(':', ""),
        not_before_ms: v.not_before.timestamp().saturating_mul(1000),
        not_after_ms: v.not_after.timestamp().saturating_mul(1000),
        dns_names,
    })
}

/// The public key (subject public key bits) of the DER certificate `der`.
pub fn public_key(der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written() {
        let mut p = rcgen::CertificateParams::new(vec!["h1.agent.vcp".to_owned()]).unwrap();
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc, 0x01]));
        p.not_before = time_at(1_000_000);
        p.not_after = time_at(2_000_000);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let f = facts(cert.der()).unwrap();
        assert_eq!(f.serial, "0abc01");
        assert_eq!(
            (f.not_before_ms, f.not_after_ms),
            (1_000_000_000, 2_000_000_000)
        );
        assert_eq!(f.dns_names, ["h1.agent.vcp"]);
        assert_eq!(public_key(cert.der()).unwrap(), key.public_key_raw());
        assert!(facts(b"not a certificate").is_err());
    }

    fn time_at(unix_s: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(unix_s).unwrap()
    }
}
