//! The Entra authority: parsing the forms people write, normalised to v2.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

use crate::Error;

/// A normalised Entra v2 authority, `https://{host}/{tenant}/v2.0`.
///
/// Accepted spellings:
/// - `https://login.microsoftonline.com/{tenant}/v2.0` (workforce),
/// - `https://{sub}.ciamlogin.com/{tenant}/v2.0` (External ID / CIAM),
/// - the same without `/v2.0`, or with `/.well-known/openid-configuration` appended,
/// - path-less CIAM `https://{sub}.ciamlogin.com/`, meaning tenant `{sub}.onmicrosoft.com`,
/// - an instance and a tenant given separately ([`Authority::from_instance`]).
///
/// The tenant may be a GUID or a domain. Only `https` is accepted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Authority {
    url: String,
    tenant: String,
}

impl Authority {
    /// Parses and normalises a full authority URL.
    pub fn parse(authority: &str) -> Result<Self, Error> {
        let url = https_url(authority)?;
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let tenant = match segments.as_slice() {
            [] => ciam_default_tenant(&url).ok_or_else(|| {
                Error::Config(format!(
                    "authority {authority} names no tenant: use https://HOST/TENANT/v2.0"
                ))
            })?,
            [tenant]
            | [tenant, "v2.0"]
            | [tenant, "v2.0", ".well-known", "openid-configuration"] => (*tenant).to_owned(),
            _ => {
                return Err(Error::Config(format!(
                    "authority {authority} is not of the form https://HOST/TENANT/v2.0"
                )));
            }
        };
        Self::build(&url, &tenant)
    }

    /// Builds an authority from an instance (`https://login.microsoftonline.com/`,
    /// `https://{sub}.ciamlogin.com`) and a tenant id or domain, as the .NET
    /// `AzureAd:Instance` and `AzureAd:TenantId` settings give them.
    ///
    /// An empty tenant is allowed for a CIAM instance (tenant `{sub}.onmicrosoft.com`).
    pub fn from_instance(instance: &str, tenant: &str) -> Result<Self, Error> {
        let url = https_url(instance)?;
        if url
            .path_segments()
            .is_some_and(|mut s| s.any(|s| !s.is_empty()))
        {
            return Err(Error::Config(format!(
                "instance {instance} must have no path; give the tenant separately"
            )));
        }
        let tenant = tenant.trim().trim_matches('/');
        if tenant.is_empty() {
            return Self::parse(instance);
        }
        Self::build(&url, tenant)
    }

    fn build(url: &Url, tenant: &str) -> Result<Self, Error> {
        let valid = !tenant.is_empty()
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(Error::Config(format!(
                "tenant {tenant:?} is neither a GUID nor a domain name"
            )));
        }
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("https://{host}:{port}/{tenant}/v2.0"),
            None => format!("https://{host}/{tenant}/v2.0"),
        };
        Ok(Authority {
            url: authority,
            tenant: tenant.to_owned(),
        })
    }

    /// The normalised authority, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The tenant as configured (GUID or domain).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// `{authority}/.well-known/openid-configuration`.
    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.url)
    }
}

fn https_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("authority {text:?} is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(Error::Config(format!(
            "authority {text} must use https (got {}://); tokens cannot be trusted from keys fetched in clear text",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Error::Config(format!(
            "authority {text} must be a plain https://HOST[:PORT]/... URL"
        )));
    }
    Ok(url)
}

/// `https://{sub}.ciamlogin.com/` means tenant `{sub}.onmicrosoft.com`.
fn ciam_default_tenant(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let sub = host.strip_suffix(".ciamlogin.com")?;
    (!sub.is_empty() && !sub.contains('.')).then(|| format!("{sub}.onmicrosoft.com"))
}

impl FromStr for Authority {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authority({})", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_accepted_forms() {
        let cases = [
            (
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
            ),
            (
                "https://login.microsoftonline.com/b4bde3af-7764-41a1-a6ab-8ee79dd99bc3/",
                "https://login.microsoftonline.com/b4bde3af-7764-41a1-a6ab-8ee79dd99bc3/v2.0",
            ),
            (
                "https://idgidentity.ciamlogin.com/",
                "https://idgidentity.ciamlogin.com/idgidentity.onmicrosoft.com/v2.0",
            ),
            (
                "https://idgidentity.ciamlogin.com",
                "https://idgidentity.ciamlogin.com/idgidentity.onmicrosoft.com/v2.0",
            ),
            (
                "https://sub.ciamlogin.com/tenant-id/v2.0/.well-known/openid-configuration",
                "https://sub.ciamlogin.com/tenant-id/v2.0",
            ),
            (
                "https://127.0.0.1:8443/contoso/v2.0",
                "https://127.0.0.1:8443/contoso/v2.0",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Authority::parse(input).unwrap().as_str(), want, "{input}");
        }
        let a = Authority::parse("https://login.microsoftonline.com/contoso/v2.0").unwrap();
        assert_eq!(
            a.metadata_url(),
            "https://login.microsoftonline.com/contoso/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(a.tenant(), "contoso");
    }

    #[test]
    fn instance_and_tenant() {
        let a = Authority::from_instance("https://idgidentity.ciamlogin.com", "b4bde3af").unwrap();
        assert_eq!(
            a.as_str(),
            "https://idgidentity.ciamlogin.com/b4bde3af/v2.0"
        );
        let a =
            Authority::from_instance("https://login.microsoftonline.com/", "contoso.com").unwrap();
        assert_eq!(
            a.as_str(),
            "https://login.microsoftonline.com/contoso.com/v2.0"
        );
        let a = Authority::from_instance("https://x.ciamlogin.com/", "").unwrap();
        assert_eq!(a.tenant(), "x.onmicrosoft.com");
        assert!(Authority::from_instance("https://login.microsoftonline.com/", "").is_err());
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "http://login.microsoftonline.com/contoso/v2.0",
            "https://login.microsoftonline.com/",
            "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
            "https://user@login.microsoftonline.com/contoso/v2.0",
            "https://login.microsoftonline.com/contoso/v2.0?x=1",
            "https://login.microsoftonline.com/con%20toso/v2.0",
            "login.microsoftonline.com/contoso",
        ] {
            assert!(Authority::parse(bad).is_err(), "{bad} should be rejected");
        }
        let err = Authority::parse("http://127.0.0.1:1/t/v2.0").unwrap_err();
        assert!(err.to_string().contains("must use https"), "{err}");
    }
}
