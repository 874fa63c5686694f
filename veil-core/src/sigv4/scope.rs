//! [`Scope`] and [`Credential`]: `<key id>/<date>/<region>/<service>/aws4_request`. Pure.

use super::SigV4Error;

/// The credential scope `<date>/<region>/<service>/aws4_request` a signature is made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    text: String,
    region_at: usize,
    service_at: usize,
    service_end: usize,
}

impl Scope {
    /// The `YYYYMMDD` date.
    pub fn date(&self) -> &str {
        &self.text[..8]
    }

    /// The region, such as `us-east-1`.
    pub fn region(&self) -> &str {
        &self.text[self.region_at..self.service_at - 1]
    }

    /// The service, such as `s3` or `sts`.
    pub fn service(&self) -> &str {
        &self.text[self.service_at..self.service_end]
    }

    /// `<date>/<region>/<service>/aws4_request`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// S3's rules apply (the path is neither normalised nor encoded again): `s3` and `s3-*`
    /// (`s3-object-lambda`, `s3-outposts`).
    pub fn is_s3(&self) -> bool {
        let service = self.service();
        service == "s3" || service.starts_with("s3-")
    }
}

/// A parsed `Credential=` value: the access key id the client signed with, and the scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The access key id (in a sandbox: the placeholder).
    pub key_id: String,
    /// The scope.
    pub scope: Scope,
}

impl Credential {
    /// Parses `<key id>/<YYYYMMDD>/<region>/<service>/aws4_request`.
    pub fn parse(text: &str) -> Result<Self, SigV4Error> {
        let bad = SigV4Error::MalformedCredential;
        let mut parts = text.rsplitn(5, '/');
        let (Some(terminator), Some(service), Some(region), Some(date), Some(key_id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad(
                "expected <key id>/<date>/<region>/<service>/aws4_request",
            ));
        };
        if terminator != "aws4_request" {
            return Err(bad("the scope does not end in aws4_request"));
        }
        if key_id.is_empty()
            || key_id.len() > 256
            || !key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(bad("the access key id is empty, too long or has odd bytes"));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the date is not YYYYMMDD"));
        }
        for part in [region, service] {
            if part.is_empty()
                || part.len() > 64
                || !part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad("region or service is empty or not [a-z0-9-]"));
            }
        }
        let text = format!("{date}/{region}/{service}/aws4_request");
        let region_at = 9;
        let service_at = region_at + region.len() + 1;
        Ok(Self {
            key_id: key_id.to_owned(),
            scope: Scope {
                service_end: service_at + service.len(),
                text,
                region_at,
                service_at,
            },
        })
    }

    /// `<key id>/<scope>` for another key id.
    pub fn with_key_id(&self, key_id: &str) -> String {
        format!("{key_id}/{}", self.scope.text())
    }
}
