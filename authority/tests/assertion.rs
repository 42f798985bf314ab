//! Certificate client assertions: PS256/x5t#S256 and RS256/x5t, replay, time, audience,
//! subject, unregistered certificate and bad signature.

use jsonwebtoken::Algorithm;

use crate::util::{
    AssertionSpec, assert_aad_error, assertion_form, daemon, post_token, register_test_cert, start,
    test_cert, verify,
};

#[tokio::test]
async fn ps256_and_rs256_assertions_get_tokens_with_azpacr_2() {
    let authority = start().await;
    register_test_cert(&authority);
    let (id, _, scope) = daemon(&authority);
    for alg in [Algorithm::PS256, Algorithm::RS256] {
        let mut spec = AssertionSpec::new(&authority, &id);
        spec.alg = alg;
        let jwt = spec.sign(test_cert());
        let (status, _, body) = post_token(&authority, &assertion_form(&id, &scope, &jwt)).await;
        assert_eq!(status, 200, "{alg:?}: {body}");
        let (_, claims) = verify(&authority, body["access_token"].as_str().unwrap()).await;
        assert_eq!(claims.azpacr, "2");
        assert_eq!(claims.azp, id);
    }
}

#[tokio::test]
async fn a_replayed_assertion_is_rejected() {
    let authority = start().await;
    register_test_cert(&authority);
    let (id, _, scope) = daemon(&authority);
    let jwt = AssertionSpec::new(&authority, &id).sign(test_cert());
    let first = post_token(&authority, &assertion_form(&id, &scope, &jwt)).await;
    assert_eq!(first.0, 200, "{}", first.2);
    let second = post_token(&authority, &assertion_form(&id, &scope, &jwt)).await;
    assert_aad_error(&second, 700027, "invalid_client", 401);
    assert!(
        second.2["error_description"]
            .as_str()
            .unwrap()
            .contains("replay")
    );
}

#[tokio::test]
async fn bad_assertions_are_rejected_with_entra_codes() {
    let authority = start().await;
    register_test_cert(&authority);
    let (id, _, scope) = daemon(&authority);
    let now = crate::util::now();

    let mut expired = AssertionSpec::new(&authority, &id);
    (expired.iat, expired.exp) = (now - 1200, now - 600);
    let mut too_long = AssertionSpec::new(&authority, &id);
    too_long.exp = now + 3600;
    let mut wrong_aud = AssertionSpec::new(&authority, &id);
    wrong_aud.aud = format!("{}/other/oauth2/v2.0/token", authority.base_url());
    let mut wrong_iss = AssertionSpec::new(&authority, &id);
    wrong_iss.iss = uuid::Uuid::new_v4().to_string();

    let cases = [
        (expired.sign(test_cert()), 700024),
        (too_long.sign(test_cert()), 700024),
        (wrong_aud.sign(test_cert()), 700027),
        (wrong_iss.sign(test_cert()), 700021),
        ("not.a.jwt".to_owned(), 700027),
    ];
    for (jwt, code) in cases {
        let parts = post_token(&authority, &assertion_form(&id, &scope, &jwt)).await;
        assert_aad_error(&parts, code, "invalid_client", 401);
    }

    // A tampered signature.
    let good = AssertionSpec::new(&authority, &id).sign(test_cert());
    let (head, sig) = good.rsplit_once('.').unwrap();
    let mut sig = sig.to_owned();
    let last = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.replace_range(sig.len() - 2.., &format!("{last}{last}"));
    let tampered = format!("{head}.{sig}");
    let parts = post_token(&authority, &assertion_form(&id, &scope, &tampered)).await;
    assert_aad_error(&parts, 700027, "invalid_client", 401);
    assert!(
        parts.2["error_description"]
            .as_str()
            .unwrap()
            .contains("signature")
    );
}

#[tokio::test]
async fn an_unregistered_certificate_is_rejected() {
    let authority = start().await; // test certificate not registered
    let (id, _, scope) = daemon(&authority);
    let jwt = AssertionSpec::new(&authority, &id).sign(test_cert());
    let parts = post_token(&authority, &assertion_form(&id, &scope, &jwt)).await;
    assert_aad_error(&parts, 700027, "invalid_client", 401);
    assert!(
        parts.2["error_description"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );
}

#[tokio::test]
async fn wrong_assertion_type_and_both_credentials_are_invalid_requests() {
    let authority = start().await;
    register_test_cert(&authority);
    let (id, secret, scope) = daemon(&authority);
    let jwt = AssertionSpec::new(&authority, &id).sign(test_cert());
    let mut form = assertion_form(&id, &scope, &jwt);
    form[3].1 = "urn:other";
    assert_aad_error(
        &post_token(&authority, &form).await,
        9002313,
        "invalid_request",
        400,
    );
    let mut form = assertion_form(&id, &scope, &jwt);
    form.push(("client_secret", &secret));
    assert_aad_error(
        &post_token(&authority, &form).await,
        9002313,
        "invalid_request",
        400,
    );
}
