//! Signed images and bundles with Nix's own ed25519 keys: keys made by
//! `nix key generate-secret` / `convert-secret-to-public`, signatures made
//! at write time (`--sign-key`) or after the fact (`sign`), checked by
//! `verify --trusted-key` and by `apply` against the root's nix.conf.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use wsl_tarball::sign::{PublicKey, Signature, SigningKey};
use wsl_tarball::store::NarHash;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts OUTPUT exited with CODE; its stdout and stderr together.
fn assert_exit(output: &Output, code: i32) -> String {
    let text = format!("{}{}", stdout(output), stderr(output));
    assert_eq!(output.status.code(), Some(code), "{text}");
    text
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The fixture written into DIR/NAME.wsl with its manifest DIR/NAME.json
/// and EXTRA flags: (tarball, manifest).
fn write_with_manifest(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let manifest = dir.join(format!("{name}.json"));
    let mut args = vec!["--manifest", arg(&manifest)];
    args.extend_from_slice(extra);
    let tarball = write_fixture(dir, &format!("{name}.wsl"), &args);
    (tarball, manifest)
}

/// `verify --bare TARBALL --manifest MANIFEST --trusted-key KEY…` (the
/// fixture is a bare store tarball).
fn verify_image(tarball: &Path, manifest: &Path, keys: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        "--bare",
        arg(tarball),
        "--manifest",
        arg(manifest),
    ];
    for key in keys {
        args.extend(["--trusted-key", key]);
    }
    run_wsl_tarball(&args)
}

fn manifest_json(manifest: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap()
}

/// Flips the lowest bit of the byte at OFFSET of FILE.
fn flip_byte(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 1;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn nix_made_keys_sign_at_write_time_and_verify_with_the_key_nix_derived() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    // The public key we derive from Nix's secret key file is Nix's own.
    let key = SigningKey::read_file(&secret).unwrap();
    let nix_public = std::fs::read_to_string(&public).unwrap();
    assert_eq!(key.public_key().to_string(), nix_public.trim());

    let (tarball, manifest) = write_with_manifest(dir.path(), "a", &["--sign-key", arg(&secret)]);
    let signatures = manifest_json(&manifest)["signatures"].clone();
    let signatures = signatures.as_array().expect("a signatures array");
    assert_eq!(signatures.len(), 1);
    assert!(signatures[0].as_str().unwrap().starts_with("team-1:"));
    // The key's secret is nowhere in what was written.
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    let secret_base64 = secret_text.split_once(':').unwrap().1;
    for file in [&tarball, &manifest] {
        let bytes = std::fs::read(file).unwrap();
        assert!(!bytes
            .windows(secret_base64.len())
            .any(|w| w == secret_base64.as_bytes()));
    }

    // The public key file Nix wrote, and the same key as an argument.
    let text = assert_exit(&verify_image(&tarball, &manifest, &[arg(&public)]), 0);
    assert!(text.contains("ok    signature"), "{text}");
    assert!(text.contains("(by team-1)"), "{text}");
    let line = format!(
        "trusted-public-keys = other:{} {}",
        "A".repeat(43) + "=",
        nix_public.trim()
    );
    assert_exit(&verify_image(&tarball, &manifest, &[&line]), 0);
}

/// Nix's own signature of a store path (`nix store sign`) checks out with
/// our parsing of Nix's public key, on Nix's fingerprint of the path: the
/// two implementations agree on the ed25519 bytes both ways.
#[test]
fn a_signature_nix_made_on_a_store_path_checks_out_with_our_public_key() {
    let dir = tempfile::tempdir().unwrap();
    // A name of this run's own: a signature copied along from elsewhere
    // cannot be taken for this key's.
    let name = format!("team-nix-{}", std::process::id());
    let (secret, public) = nix_key_pair(dir.path(), &name);
    let path = fixture_system();
    // In a store of the test's own, so the host's path gets no signature.
    let store = store_of(&dir.path().join("store"));
    run_ok(nix_command("nix").args(["copy", "--no-check-sigs", "--to", &store, path]));
    run_ok(nix_command("nix").args([
        "store",
        "sign",
        "--store",
        &store,
        "--key-file",
        arg(&secret),
        path,
    ]));
    let info: serde_json::Value = serde_json::from_slice(&run_ok(nix_command("nix").args([
        "path-info",
        "--store",
        &store,
        "--json",
        path,
    ])))
    .unwrap();
    let info = &info[0];
    let signature = info["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .find(|s| s.starts_with(&format!("{name}:")))
        .expect("nix store sign added our key's signature");
    let references: Vec<&str> = info["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let fingerprint = format!(
        "1;{path};{};{};{}",
        NarHash::parse(info["narHash"].as_str().unwrap())
            .unwrap()
            .to_nix32_string(),
        info["narSize"].as_u64().unwrap(),
        references.join(",")
    );
    let key = PublicKey::parse(std::fs::read_to_string(&public).unwrap().trim()).unwrap();
    let signature = Signature::parse(signature).unwrap();
    assert!(key.verifies(fingerprint.as_bytes(), &signature));
    assert!(!key.verifies(b"1;something else", &signature));
    // And ours on the same fingerprint is Nix's (ed25519 is deterministic).
    let ours = SigningKey::read_file(&secret)
        .unwrap()
        .sign_bytes(fingerprint.as_bytes());
    assert_eq!(ours, signature);
}

#[test]
fn a_flipped_byte_in_the_image_or_its_manifest_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let (tarball, manifest) = write_with_manifest(dir.path(), "a", &["--sign-key", arg(&secret)]);
    assert_exit(&verify_image(&tarball, &manifest, &[arg(&public)]), 0);

    // The gzip header's modification time: the same tar inside, another file.
    let image = dir.path().join("flipped.wsl");
    std::fs::copy(&tarball, &image).unwrap();
    flip_byte(&image, 5);
    let text = assert_exit(&verify_image(&image, &manifest, &[arg(&public)]), 1);
    assert!(text.contains("FAIL  manifest"), "{text}");
    assert!(text.contains("the file's sha256 is"), "{text}");

    // A byte of the manifest: its system path, and its signature.
    let json = std::fs::read_to_string(&manifest).unwrap();
    let system = fixture_system();
    let at = json.find(system).unwrap() + system.len() - 1;
    let changed = dir.path().join("changed.json");
    std::fs::write(&changed, &json).unwrap();
    flip_byte(&changed, at);
    let text = assert_exit(&verify_image(&tarball, &changed, &[arg(&public)]), 1);
    assert!(
        text.contains("the signature by trusted key team-1 does not match the contents"),
        "{text}"
    );
    let signature_at = json.find("\"team-1:").unwrap() + 12;
    std::fs::write(&changed, &json).unwrap();
    flip_byte(&changed, signature_at);
    let text = assert_exit(&verify_image(&tarball, &changed, &[arg(&public)]), 1);
    assert!(text.contains("FAIL  signature"), "{text}");
}

#[test]
fn a_missing_signature_or_an_unknown_key_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, _) = nix_key_pair(dir.path(), "team-1");
    let (_, other_public) = nix_key_pair(dir.path(), "team-2");
    // Another key that calls itself team-1.
    let impostor_dir = dir.path().join("impostor");
    std::fs::create_dir(&impostor_dir).unwrap();
    let (_, impostor_public) = nix_key_pair(&impostor_dir, "team-1");

    let (unsigned, unsigned_manifest) = write_with_manifest(dir.path(), "u", &[]);
    let text = assert_exit(
        &verify_image(&unsigned, &unsigned_manifest, &[arg(&other_public)]),
        1,
    );
    assert!(text.contains("it is not signed (no signatures)"), "{text}");

    let (signed, manifest) = write_with_manifest(dir.path(), "s", &["--sign-key", arg(&secret)]);
    let text = assert_exit(&verify_image(&signed, &manifest, &[arg(&other_public)]), 1);
    assert!(
        text.contains("no signature is by a trusted key (signed by team-1; trusted: team-2)"),
        "{text}"
    );
    let text = assert_exit(
        &verify_image(&signed, &manifest, &[arg(&impostor_public)]),
        1,
    );
    assert!(
        text.contains("by trusted key team-1 does not match"),
        "{text}"
    );

    // Without --manifest a tarball's signature cannot be found: trouble.
    let output = run_wsl_tarball(&["verify", arg(&signed), "--trusted-key", arg(&other_public)]);
    let text = assert_exit(&output, 2);
    assert!(text.contains("--trusted-key needs --manifest"), "{text}");
}

#[test]
fn bad_key_files_are_named_with_what_is_wrong_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    let (_, base64) = secret_text.split_once(':').unwrap();
    let cut = dir.path().join("cut.sec");
    let engine = base64::engine::general_purpose::STANDARD;
    let seed = &base64::Engine::decode(&engine, base64).unwrap()[..32];
    std::fs::write(
        &cut,
        format!("team-1:{}", base64::Engine::encode(&engine, seed)),
    )
    .unwrap();
    let nameless = dir.path().join("nameless.sec");
    std::fs::write(&nameless, base64).unwrap();
    let closure = write_path_info(fixture_system(), dir.path());
    for (key, why) in [
        (
            &cut,
            "the base64 decodes to 32 bytes, not the 64 of a secret key",
        ),
        (&nameless, "it is not NAME:BASE64 (no `:`)"),
        (&public, "the base64 decodes to 32 bytes"),
    ] {
        let before = dir_names(dir.path());
        let manifest = dir.path().join("m.json");
        let output = run_write(
            &closure,
            fixture_system(),
            &dir.path().join("x.wsl"),
            &[
                "--manifest",
                arg(&manifest),
                "--sign-key",
                arg(key),
                "--quiet",
            ],
        );
        let text = assert_exit(&output, 1);
        assert!(
            text.contains(&format!("{}: not a Nix secret key", key.display())),
            "{text}"
        );
        assert!(text.contains(why), "{text}");
        assert!(!text.contains(&base64[..20]), "{text}");
        assert_eq!(dir_names(dir.path()), before);
    }
    // A signature needs a manifest to go into.
    let output = run_write(
        &closure,
        fixture_system(),
        &dir.path().join("x.wsl"),
        &["--sign-key", arg(&secret)],
    );
    let text = assert_exit(&output, 2);
    assert!(text.contains("--sign-key needs --manifest"), "{text}");
}

#[test]
fn sign_after_the_fact_gives_the_bytes_signing_at_write_time_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let at_write = dir.path().join("at-write");
    let later = dir.path().join("later");
    std::fs::create_dir(&at_write).unwrap();
    std::fs::create_dir(&later).unwrap();
    let (_, signed_manifest) = write_with_manifest(&at_write, "a", &["--sign-key", arg(&secret)]);
    let (tarball, manifest) = write_with_manifest(&later, "a", &[]);
    let image_before = std::fs::read(&tarball).unwrap();

    // Into another file: the input manifest stays as it was.
    let unsigned = std::fs::read(&manifest).unwrap();
    let out = later.join("signed.json");
    let output = run_wsl_tarball(&[
        "sign",
        arg(&tarball),
        "--manifest",
        arg(&manifest),
        "--key",
        arg(&secret),
        "-o",
        arg(&out),
    ]);
    let text = assert_exit(&output, 0);
    assert!(text.contains("signed the image with key team-1"), "{text}");
    assert_eq!(std::fs::read(&manifest).unwrap(), unsigned);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&signed_manifest).unwrap()
    );
    // In place (replaced atomically); signing twice changes nothing.
    for _ in 0..2 {
        let output = run_wsl_tarball(&[
            "sign",
            arg(&tarball),
            "--manifest",
            arg(&manifest),
            "--key",
            arg(&secret),
        ]);
        assert_exit(&output, 0);
        assert_eq!(
            std::fs::read_to_string(&manifest).unwrap(),
            std::fs::read_to_string(&signed_manifest).unwrap()
        );
    }
    assert_eq!(std::fs::read(&tarball).unwrap(), image_before);
    assert_exit(&verify_image(&tarball, &manifest, &[arg(&public)]), 0);

    // A manifest of another image is not signed.
    let (other, _) = write_with_manifest(dir.path(), "other", &["--mtime", "7"]);
    let before = std::fs::read(&manifest).unwrap();
    let output = run_wsl_tarball(&[
        "sign",
        arg(&other),
        "--manifest",
        arg(&manifest),
        "--key",
        arg(&secret),
    ]);
    let text = assert_exit(&output, 1);
    assert!(text.contains("is not the image manifest"), "{text}");
    assert!(text.contains("nothing was signed"), "{text}");
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
}

/// A flake whose host `signed` is tests/nix's `fake` (with the facts, as
/// the module makes them) with `wsl.tarball.signing.keyFile = KEY`.
fn flake_with_signing_key(dir: &Path, key: &Path) -> String {
    let flake = dir.join("flake");
    std::fs::create_dir(&flake).unwrap();
    std::fs::write(
        flake.join("flake.nix"),
        format!(
            r#"{{
  inputs.fixtures.url = "path:{fixtures}";
  outputs = {{ self, fixtures }}: {{
    nixosConfigurations.signed.config = fixtures.nixosConfigurations.fake.config // {{
      wsl.tarball.signing.keyFile = "{key}";
    }};
  }};
}}
"#,
            fixtures = repo_root().join("tests/nix").display(),
            key = key.display()
        ),
    )
    .unwrap();
    format!("path:{}", flake.display())
}

#[test]
fn build_signs_with_the_key_file_the_module_names() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let flake = flake_with_signing_key(dir.path(), &secret);
    let tarball = dir.path().join("signed.wsl");
    let manifest = dir.path().join("signed.json");
    let build = |extra: &[&str]| {
        wsl_tarball()
            .env("NIX_CONFIG", NIX_CONFIG)
            .args([
                "build",
                "signed",
                "--flake",
                &flake,
                "--quiet",
                "-o",
                arg(&tarball),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // No manifest for the signature: refused before anything is written.
    let text = assert_exit(&build(&[]), 2);
    assert!(
        text.contains(&format!(
            "the host's wsl.tarball.signing.keyFile ({}) asks for a signature",
            secret.display()
        )),
        "{text}"
    );
    assert!(!tarball.exists());

    assert_exit(&build(&["--manifest", arg(&manifest)]), 0);
    let text = assert_exit(
        &run_wsl_tarball(&[
            "verify",
            arg(&tarball),
            "--manifest",
            arg(&manifest),
            "--trusted-key",
            arg(&public),
        ]),
        0,
    );
    assert!(text.contains("(by team-1)"), "{text}");
}

// ---------------------------------------------------------------------------
// Bundles.

/// `delta` from the v1 tarball in DIR to v2 into DIR/NAME with EXTRA flags;
/// (old tarball, bundle).
fn bundle(dir: &Path, old: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let new_closure = closure_file(v2(), dir, &format!("{name}.closure.json"));
    let bundle = dir.join(name);
    let mut args = vec![
        "delta",
        "--from",
        arg(old),
        "--closure",
        arg(&new_closure),
        "--system",
        v2(),
        "-o",
        arg(&bundle),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    assert_exit(&run_wsl_tarball(&args), 0);
    bundle
}

fn verify_bundle(bundle: &Path, keys: &[&str]) -> Output {
    let mut args = vec!["verify", arg(bundle)];
    for key in keys {
        args.extend(["--trusted-key", key]);
    }
    run_wsl_tarball(&args)
}

/// The offset of NEEDLE in FILE.
fn find(file: &Path, needle: &[u8]) -> usize {
    std::fs::read(file)
        .unwrap()
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn a_signed_bundle_verifies_and_a_flipped_byte_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let (_, other_public) = nix_key_pair(dir.path(), "team-2");
    let (old, _) = write_system(v1(), dir.path(), "old");
    // Uncompressed, so that a flipped byte changes a member, not the gzip.
    let signed = bundle(
        dir.path(),
        &old,
        "signed.wsl-delta",
        &["--sign-key", arg(&secret), "--compression", "none"],
    );
    let text = assert_exit(&verify_bundle(&signed, &[arg(&public)]), 0);
    assert!(text.contains("ok    signature"), "{text}");
    let text = assert_exit(&run_wsl_tarball(&["inspect", arg(&signed)]), 0);
    assert!(
        text.contains("signed       by team-1 (not checked here"),
        "{text}"
    );
    let text = assert_exit(&verify_bundle(&signed, &[arg(&other_public)]), 1);
    assert!(text.contains("signed by team-1; trusted: team-2"), "{text}");

    let unsigned = bundle(
        dir.path(),
        &old,
        "unsigned.wsl-delta",
        &["--compression", "none"],
    );
    let text = assert_exit(&verify_bundle(&unsigned, &[arg(&public)]), 1);
    assert!(text.contains("it is not signed"), "{text}");
    // Without trusted keys, verify checks no signature (as before).
    assert_exit(&verify_bundle(&unsigned, &[]), 0);

    // The manifest: the new system's path in it.
    let manifest_copy = dir.path().join("manifest-flipped.wsl-delta");
    std::fs::copy(&signed, &manifest_copy).unwrap();
    let at = find(&manifest_copy, b"\"newSystem\": \"") + 20 + 20;
    flip_byte(&manifest_copy, at);
    let text = assert_exit(&verify_bundle(&manifest_copy, &[arg(&public)]), 1);
    assert!(text.contains("FAIL  signature"), "{text}");

    // The export stream: the last byte of the new hello's version file.
    let export_copy = dir.path().join("export-flipped.wsl-delta");
    std::fs::copy(&signed, &export_copy).unwrap();
    let at = find(&export_copy, b"hello version 2\n") + 14;
    flip_byte(&export_copy, at);
    let text = assert_exit(&verify_bundle(&export_copy, &[arg(&public)]), 1);
    assert!(text.contains("FAIL  nix-export"), "{text}");
}

#[test]
fn sign_after_the_fact_gives_the_bundle_delta_signs() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let (old, _) = write_system(v1(), dir.path(), "old");
    let at_delta = bundle(
        dir.path(),
        &old,
        "a.wsl-delta",
        &["--sign-key", arg(&secret)],
    );
    let later = bundle(dir.path(), &old, "b.wsl-delta", &[]);
    let output = run_wsl_tarball(&["sign", arg(&later), "--key", arg(&secret)]);
    let text = assert_exit(&output, 0);
    assert!(
        text.contains("signed the update bundle with key team-1"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&later).unwrap(),
        std::fs::read(&at_delta).unwrap()
    );
    assert_exit(&verify_bundle(&later, &[arg(&public)]), 0);

    // A second key adds its signature beside the first.
    let (second, second_public) = nix_key_pair(dir.path(), "team-2");
    assert_exit(
        &run_wsl_tarball(&["sign", arg(&later), "--key", arg(&second)]),
        0,
    );
    assert_exit(&verify_bundle(&later, &[arg(&public)]), 0);
    assert_exit(&verify_bundle(&later, &[arg(&second_public)]), 0);
    let text = assert_exit(&run_wsl_tarball(&["inspect", arg(&later)]), 0);
    assert!(text.contains("signed       by team-1, team-2"), "{text}");
}

/// Writes ROOT/etc/nix/nix.conf trusting the key in PUBLIC.
fn trust_in_root(root: &Path, public: &Path) {
    std::fs::create_dir_all(root.join("etc/nix")).unwrap();
    let key = std::fs::read_to_string(public).unwrap();
    std::fs::write(
        root.join("etc/nix/nix.conf"),
        format!("substituters =\ntrusted-public-keys = {}\n", key.trim()),
    )
    .unwrap();
}

fn apply(bundle: &Path, root: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["apply", arg(bundle), "--root", arg(root), "--dry-activate"];
    args.extend_from_slice(extra);
    run_wsl_tarball(&args)
}

#[test]
fn apply_refuses_an_unsigned_bundle_unless_allowed_or_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let (_, other_public) = nix_key_pair(dir.path(), "team-2");
    let (old, _) = write_system(v1(), dir.path(), "old");
    let unsigned = bundle(dir.path(), &old, "unsigned.wsl-delta", &[]);
    let root = root_from(&old, dir.path(), "R");
    // A nix.conf key that is not one is named, and nothing changes.
    std::fs::create_dir_all(root.join("etc/nix")).unwrap();
    std::fs::write(
        root.join("etc/nix/nix.conf"),
        "trusted-public-keys = team-1:AAAA\n",
    )
    .unwrap();
    let text = assert_exit(&apply(&unsigned, &root, &[]), 1);
    assert!(
        text.contains(&format!(
            "{}/etc/nix/nix.conf: key 1: the base64 decodes to 3 bytes, not the 32 of a public key",
            root.display()
        )),
        "{text}"
    );
    assert_eq!(profile_system(&root), v1());
    trust_in_root(&root, &public);

    let text = assert_exit(&apply(&unsigned, &root, &[]), 1);
    assert!(
        text.contains("refusing a bundle not signed by a key Nix trusts"),
        "{text}"
    );
    assert!(text.contains("it is not signed"), "{text}");
    assert!(text.contains("--allow-unsigned"), "{text}");
    assert_eq!(profile_system(&root), v1());

    let text = assert_exit(&apply(&unsigned, &root, &["--allow-unsigned"]), 0);
    assert!(text.contains("WARNING: --allow-unsigned"), "{text}");
    assert_eq!(profile_system(&root), v2());

    // Signed by the key the root's nix.conf trusts; by another.
    let signed = bundle(
        dir.path(),
        &old,
        "signed.wsl-delta",
        &["--sign-key", arg(&secret)],
    );
    let other_root = root_from(&old, dir.path(), "R2");
    trust_in_root(&other_root, &other_public);
    let text = assert_exit(&apply(&signed, &other_root, &[]), 1);
    assert!(text.contains("signed by team-1; trusted: team-2"), "{text}");
    assert!(
        text.contains(&format!("{}/etc/nix/nix.conf", other_root.display())),
        "{text}"
    );
    assert_eq!(profile_system(&other_root), v1());
    trust_in_root(&other_root, &public);
    let text = assert_exit(&apply(&signed, &other_root, &[]), 0);
    assert!(text.contains("signed by trusted key team-1"), "{text}");
    assert_eq!(profile_system(&other_root), v2());
}

#[test]
fn the_bundled_script_cannot_check_a_signature_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_system(v1(), dir.path(), "old");
    let unsigned = bundle(dir.path(), &old, "unsigned.wsl-delta", &[]);
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run_ok(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&unsigned)
            .arg("-C")
            .arg(&unpacked),
    );
    let root = root_from(&old, dir.path(), "R");
    let script = unpacked.join("wsl-delta/apply");
    let output = nix_command("sh")
        .arg(&script)
        .args(["--dry-activate", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let text = assert_exit(&output, 1);
    assert!(
        text.contains("this script cannot check the bundle's signature"),
        "{text}"
    );
    assert!(text.contains("wsl-tarball apply"), "{text}");
    assert_eq!(profile_system(&root), v1());
    let output = nix_command("sh")
        .arg(&script)
        .args(["--allow-unsigned", "--dry-activate", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let text = assert_exit(&output, 0);
    assert!(text.contains("signature is NOT checked"), "{text}");
    assert_eq!(profile_system(&root), v2());
}

// ---------------------------------------------------------------------------
// The reusable workflow's signing step, run as GitHub runs it.

/// The `run` script of the build job's step named NAME.
fn workflow_step(name: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/build-wsl-tarball.yml"))
        .unwrap();
    let workflow = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    workflow["jobs"]["build"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|step| step["name"].as_str() == Some(name))
        .and_then(|step| step["run"].as_str())
        .unwrap_or_else(|| panic!("no step {name:?}"))
        .to_owned()
}

#[test]
fn the_workflow_signs_with_the_secret_in_a_private_file_it_removes() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    // The build step keeps the derivation's names under dist/HOST/.
    let dist = dir.path().join("dist/my-wsl");
    std::fs::create_dir_all(&dist).unwrap();
    let (tarball, manifest) = write_with_manifest(dir.path(), "built", &[]);
    std::fs::rename(&tarball, dist.join("nixos.wsl")).unwrap();
    std::fs::rename(&manifest, dist.join("manifest.json")).unwrap();
    // `nix run PACKAGE -- ARGS` runs the binary under test, noting the mode
    // of the key file it is given.
    let shim = dir.path().join("shim");
    std::fs::create_dir(&shim).unwrap();
    let log = dir.path().join("key-mode");
    std::fs::write(
        shim.join("nix"),
        format!(
            "#!/bin/sh\n[ \"$1\" = run ] && [ \"$3\" = -- ] || exit 99\nshift 3\n\
             for a; do [ \"$prev\" = --key ] && stat -c %a \"$a\" > {log}; prev=$a; done\n\
             exec {binary} \"$@\"\n",
            log = log.display(),
            binary = env!("CARGO_BIN_EXE_wsl-tarball"),
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        shim.join("nix"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    let step = |key: &str| {
        std::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(workflow_step("Sign the manifest"))
            .current_dir(dir.path())
            .env(
                "PATH",
                format!("{}:{}", shim.display(), std::env::var("PATH").unwrap()),
            )
            .env("TMPDIR", &tmp)
            .env("FLAKE", ".")
            .env("HOST", "my-wsl")
            .env("SIGNING_KEY", key)
            .env("GITHUB_STEP_SUMMARY", dir.path().join("summary"))
            .output()
            .unwrap()
    };

    // Without the secret: nothing signed, said so.
    let text = assert_exit(&step(""), 0);
    assert!(text.contains("stays unsigned"), "{text}");
    assert!(manifest_json(&dist.join("manifest.json"))["signatures"].is_null());

    let text = assert_exit(&step(&secret_text), 0);
    let (_, base64) = secret_text.split_once(':').unwrap();
    assert!(!text.contains(&base64[..16]), "{text}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "600");
    assert!(dir_names(&tmp).is_empty(), "{:?}", dir_names(&tmp));
    assert_exit(
        &verify_image(
            &dist.join("nixos.wsl"),
            &dist.join("manifest.json"),
            &[arg(&public)],
        ),
        0,
    );
}

/// Without `--root`, the keys are the running Nix's (`nix show-config`): the
/// signature is checked before anything else, so on this machine (no
/// system profile) a trusted bundle goes on to the profile check and stops.
#[test]
fn apply_reads_the_running_nixs_trusted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = nix_key_pair(dir.path(), "team-1");
    let (_, other_public) = nix_key_pair(dir.path(), "team-2");
    let (old, _) = write_system(v1(), dir.path(), "old");
    let signed = bundle(
        dir.path(),
        &old,
        "signed.wsl-delta",
        &["--sign-key", arg(&secret)],
    );
    let apply_trusting = |public: &Path| {
        let key = std::fs::read_to_string(public).unwrap();
        wsl_tarball()
            .env(
                "NIX_CONFIG",
                format!("{NIX_CONFIG}trusted-public-keys = {}\n", key.trim()),
            )
            .args(["apply", arg(&signed)])
            .output()
            .unwrap()
    };
    let text = assert_exit(&apply_trusting(&other_public), 1);
    assert!(
        text.contains("not signed by a key Nix trusts (nix show-config's trusted-public-keys)"),
        "{text}"
    );
    assert!(text.contains("signed by team-1; trusted: team-2"), "{text}");
    let text = assert_exit(&apply_trusting(&public), 1);
    assert!(!text.contains("signed"), "{text}");
    assert!(
        text.contains(&format!("this bundle updates {}", v1())),
        "{text}"
    );
}

/// A key inside `--extra-files` would be copied into the tarball, a key in
/// the store is readable by everyone: both refused before anything is read.
#[test]
fn a_key_inside_the_extra_files_or_the_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    let (secret, _) = nix_key_pair(&extra.join("etc"), "team-1");
    let closure = write_path_info(fixture_system(), dir.path());
    let tarball = dir.path().join("x.wsl");
    let manifest = dir.path().join("x.json");
    let before = dir_names(dir.path());
    let output = run_write(
        &closure,
        fixture_system(),
        &tarball,
        &[
            "--extra-files",
            arg(&extra),
            "--manifest",
            arg(&manifest),
            "--sign-key",
            arg(&secret),
            "--quiet",
        ],
    );
    let text = assert_exit(&output, 2);
    assert!(
        text.contains(&format!(
            "--sign-key {} is inside --extra-files {}",
            secret.display(),
            extra.display()
        )),
        "{text}"
    );
    assert_eq!(dir_names(dir.path()), before);

    // The store read (here DIR/root/nix/store, with --store-root).
    let root = dir.path().join("root");
    let in_store = root.join("nix/store/00000000000000000000000000000000-key");
    std::fs::create_dir_all(&in_store).unwrap();
    let key = in_store.join("team-1.sec");
    std::fs::copy(&secret, &key).unwrap();
    let output = run_wsl_tarball(&[
        "delta",
        "--from",
        arg(&closure),
        "--closure",
        arg(&closure),
        "--system",
        fixture_system(),
        "--store-root",
        arg(&root),
        "-o",
        arg(&dir.path().join("u.wsl-delta")),
        "--sign-key",
        arg(&key),
    ]);
    let text = assert_exit(&output, 2);
    assert!(
        text.contains(&format!("--sign-key {} is in the Nix store", key.display())),
        "{text}"
    );
    assert!(!dir.path().join("u.wsl-delta").exists());
}
