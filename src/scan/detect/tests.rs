use super::*;

fn check(
    family: Family,
    anchor: &str,
    before: &[u8],
    after: &[u8],
    at_end: bool,
    context: Context,
) -> Verdict {
    let around = Around {
        before,
        after,
        at_end,
    };
    validate(family, anchor.len(), &around, context)
}

fn content() -> Context {
    Context {
        is_content: true,
        authorized_keys_file: false,
    }
}

fn detector_of(v: Verdict) -> Option<Detector> {
    match v {
        Verdict::Found { detector, .. } => Some(detector),
        _ => None,
    }
}

#[test]
fn aws_key_ids_need_sixteen_more_and_skip_documentation_examples() {
    let c = content();
    let key = b"AKIAZ7Q3MPLW2XKD4RT6 ";
    assert_eq!(
        detector_of(check(Family::Aws, "AKIA", b" ", key, true, c)),
        Some(Detector::AwsAccessKeyId)
    );
    assert_eq!(
        check(Family::Aws, "AKIA", b"x", key, true, c),
        Verdict::NotFound
    );
    assert_eq!(
        check(Family::Aws, "AKIA", b"", b"AKIAZ7Q3MPLW2XKD4RT6X", true, c),
        Verdict::NotFound
    );
    assert_eq!(
        check(Family::Aws, "AKIA", b"", b"AKIAIOSFODNN7EXAMPLE", true, c),
        Verdict::NotFound
    );
    assert_eq!(
        check(Family::Aws, "AKIA", b"", b"AKIAZ7Q3", false, c),
        Verdict::NeedMore
    );
    assert_eq!(
        check(Family::Aws, "AKIA", b"", b"AKIAZ7Q3", true, c),
        Verdict::NotFound
    );
}

#[test]
fn bare_prefixes_are_not_tokens() {
    let c = content();
    for (family, anchor, text) in [
        (
            Family::GithubClassic,
            "ghp_",
            &b"ghp_ is the prefix of a token"[..],
        ),
        (Family::Npm, "npm_", b"npm_config_cache=/tmp"),
        (Family::SkKey, "sk-", b"sk-proj-short"),
        (Family::SkKey, "sk-", b"sk-ant-"),
        (Family::Gitlab, "glpat-", b"glpat-xxxx"),
        (Family::Slack, "xoxb-", b"xoxb-your-token-here"),
    ] {
        assert_eq!(
            check(family, anchor, b" ", text, true, c),
            Verdict::NotFound,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn each_token_shape_is_recognised() {
    let c = content();
    let a36 = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
    let a48 = "T3BlbkFJa1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0";
    let long = "x".repeat(40) + "-_AB12";
    let cases: Vec<(Family, &str, String, Detector)> = vec![
        (
            Family::GithubClassic,
            "ghp_",
            format!("ghp_{a36}\n"),
            Detector::GithubToken,
        ),
        (
            Family::GithubPat,
            "github_pat_",
            format!("github_pat_{}_{}", &a48[..22], "b".repeat(59)),
            Detector::GithubToken,
        ),
        (
            Family::Gitlab,
            "glpat-",
            "glpat-Ab12Cd34Ef56Gh78Ij90".into(),
            Detector::GitlabToken,
        ),
        (
            Family::Slack,
            "xoxb-",
            "xoxb-1234567890-0987654321-AbCdEfGhIjKl".into(),
            Detector::SlackToken,
        ),
        (
            Family::SkKey,
            "sk-",
            format!("sk-{a48}\""),
            Detector::OpenaiApiKey,
        ),
        (
            Family::SkKey,
            "sk-",
            format!("sk-proj-{long}"),
            Detector::OpenaiApiKey,
        ),
        (
            Family::SkKey,
            "sk-",
            format!("sk-ant-api03-{long}"),
            Detector::AnthropicApiKey,
        ),
        (
            Family::Npm,
            "npm_",
            format!("npm_{a36}"),
            Detector::NpmToken,
        ),
    ];
    for (family, anchor, text, detector) in cases {
        assert_eq!(
            detector_of(check(family, anchor, b"=", text.as_bytes(), true, c)),
            Some(detector),
            "{text}"
        );
    }
}

#[test]
fn shadow_lines_are_password_hashes_but_crypt_strings_in_code_are_not() {
    let c = content();
    let hash = b"$6$saltsalt$0123456789abcdefghijABCDEFGHIJ./:19000:0:99999:7:::\n";
    assert_eq!(
        detector_of(check(Family::CryptHash, "$6$", b"root:", hash, true, c)),
        Some(Detector::PasswordHash)
    );
    assert_eq!(
        detector_of(check(Family::CryptHash, "$6$", b"x\nalice:", hash, true, c)),
        Some(Detector::PasswordHash)
    );
    assert_eq!(
        check(Family::CryptHash, "$6$", b"crypt('", hash, true, c),
        Verdict::NotFound
    );
    assert_eq!(
        check(Family::CryptHash, "$6$", b"x = 'alice:", hash, true, c),
        Verdict::NotFound
    );
}

#[test]
fn private_key_markers_need_a_base64_body() {
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n");
    let encrypted = format!("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{body}\n");
    let pgp = format!("-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\n{body}\n");
    let openssh = format!("-----BEGIN OPENSSH PRIVATE KEY-----\r\n{body}\r\n");
    for (text, detector) in [
        (pem, Detector::PemPrivateKey),
        (encrypted, Detector::PemPrivateKey),
        (pgp, Detector::PgpPrivateKey),
        (openssh, Detector::OpensshPrivateKey),
    ] {
        assert_eq!(
            detector_of(check(
                Family::BeginBlock,
                "-----BEGIN ",
                b"",
                text.as_bytes(),
                true,
                content()
            )),
            Some(detector),
            "{text}"
        );
    }
    for text in [
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\\n",
        "-----BEGIN CERTIFICATE-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n",
        "-----BEGIN \" + type + \"-----",
    ] {
        assert_eq!(
            check(
                Family::BeginBlock,
                "-----BEGIN ",
                b"",
                text.as_bytes(),
                true,
                content()
            ),
            Verdict::NotFound,
            "{text}"
        );
    }
    let partial = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl";
    assert_eq!(
        check(
            Family::BeginBlock,
            "-----BEGIN ",
            b"",
            partial,
            false,
            content()
        ),
        Verdict::NeedMore
    );
}

#[test]
fn public_keys_count_only_in_authorized_keys_files() {
    let line = format!(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} alice@laptop\n",
        "x".repeat(40)
    );
    let mut c = content();
    assert_eq!(
        check(
            Family::SshPublicKey,
            "ssh-ed25519 ",
            b"",
            line.as_bytes(),
            true,
            c
        ),
        Verdict::NotFound
    );
    c.authorized_keys_file = true;
    assert_eq!(
        detector_of(check(
            Family::SshPublicKey,
            "ssh-ed25519 ",
            b"",
            line.as_bytes(),
            true,
            c
        )),
        Some(Detector::AuthorizedKeys)
    );
    let ecdsa = format!(
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY{}\n",
        "y".repeat(40)
    );
    assert_eq!(
        detector_of(check(
            Family::SshPublicKey,
            "ecdsa-sha2-nistp",
            b"",
            ecdsa.as_bytes(),
            true,
            c
        )),
        Some(Detector::AuthorizedKeys)
    );
}

#[test]
fn detector_names_round_trip() {
    for detector in Detector::ALL {
        assert_eq!(Detector::from_name(detector.name()), Some(detector));
    }
}
