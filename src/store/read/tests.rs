//! Every closure format, from real Nix output and from the Nix sources.

use super::json::content_address_text;
use super::*;
use crate::store::NarHash;

// Fixtures. The first five are real output of Nix 2.8 for one closure
// (JSON reformatted with `jq .`): `top` references `self-ref` and
// `added-file`; `self-ref` references itself, `greeting` and `fod-flat`.
// `greeting` is `builtins.toFile` (ca `text:`), `fod-flat` a flat
// fixed-output derivation (`fixed:`), `added-file` a `builtins.path`
// (`fixed:r:`). `top` and `self-ref` are signed with a test key.

/// `.attrs.json` of a `__structuredAttrs` derivation with
/// `exportReferencesGraph.closure = [ top ]`.
const ATTRS_JSON: &str = r#"{
  "builder": "/bin/bash",
  "closure": [
    {
      "ca": "text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi",
      "closureSize": 144,
      "narHash": "sha256:1n6yxrfa102vp3sch9qx8xrqpd40bja6kdpcsczd7cwph07a8sqb",
      "narSize": 144,
      "path": "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
      "references": []
    },
    {
      "ca": "fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c",
      "closureSize": 120,
      "narHash": "sha256:07y32ljqjzpgw56dgrwfs7f0illrfg8bgkfq0d89p01m677grk1p",
      "narSize": 120,
      "path": "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
      "references": []
    },
    {
      "closureSize": 1240,
      "narHash": "sha256:1jbm8g66gsh04lvjm5dik62b03fzfh4izbmn8ffsrjiyyi45bzs2",
      "narSize": 224,
      "path": "/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top",
      "references": [
        "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
        "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
      ]
    },
    {
      "ca": "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
      "closureSize": 120,
      "narHash": "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
      "narSize": 120,
      "path": "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
      "references": []
    },
    {
      "closureSize": 896,
      "narHash": "sha256:1cn0xpv46cbfy867zpxkw2l66zcbn3ab14avmfz2zs231isfnnqm",
      "narSize": 632,
      "path": "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref",
      "references": [
        "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
        "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
        "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
      ]
    }
  ],
  "exportReferencesGraph": {
    "closure": [
      "/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top"
    ]
  },
  "name": "graph",
  "outputs": {
    "out": "/nix/store/xajxm9bq8g3kxzlaggbrkx69fl2vls94-graph"
  },
  "system": "x86_64-linux"
}
"#;

/// `nix path-info --json -r top`.
const PATH_INFO_LIST: &str = r#"[
  {
    "path": "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
    "narHash": "sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=",
    "narSize": 144,
    "references": [],
    "ca": "text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi",
    "registrationTime": 1795537333
  },
  {
    "path": "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
    "narHash": "sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=",
    "narSize": 120,
    "references": [],
    "ca": "fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c",
    "deriver": "/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv",
    "registrationTime": 1795537333,
    "ultimate": true
  },
  {
    "path": "/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top",
    "narHash": "sha256-Qv9VSPQ+yqydQ7auHwl03w2whJmxlSo3JQDqZ8xDdck=",
    "narSize": 224,
    "references": [
      "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
      "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
    ],
    "deriver": "/nix/store/l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv",
    "registrationTime": 1795537333,
    "ultimate": true,
    "signatures": [
      "test-key-1:GDdkQMUC9l7VHspEimrclou5fUzMaknAQnEqKX0txiwxSL4dXdt7qO2zwQDILNnh3tazED0PO/RGgNPC+hcACw=="
    ]
  },
  {
    "path": "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file",
    "narHash": "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
    "narSize": 120,
    "references": [],
    "ca": "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
    "registrationTime": 1795537333
  },
  {
    "path": "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref",
    "narHash": "sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=",
    "narSize": 632,
    "references": [
      "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
      "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
      "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
    ],
    "deriver": "/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv",
    "registrationTime": 1795537333,
    "ultimate": true,
    "signatures": [
      "test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="
    ]
  }
]
"#;

/// `nix path-info --json /nix/store/000…-missing top`.
const PATH_INFO_LIST_WITH_INVALID: &str = r#"[{"path":"/nix/store/00000000000000000000000000000000-missing","valid":false},{"path":"/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top","narHash":"sha256-Qv9VSPQ+yqydQ7auHwl03w2whJmxlSo3JQDqZ8xDdck=","narSize":224,"references":["/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file","/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"deriver":"/nix/store/l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv","registrationTime":1795537333,"ultimate":true,"signatures":["test-key-1:GDdkQMUC9l7VHspEimrclou5fUzMaknAQnEqKX0txiwxSL4dXdt7qO2zwQDILNnh3tazED0PO/RGgNPC+hcACw=="]}]"#;

/// `nix-store --dump-db $(nix-store -qR top)`.
const DUMP_DB: &str = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded8
144

0
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
37ccfcce3135809b5003d8cdb7d07399d208dcd18ee7d74ce1ef7e892515c31f
120
/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv
0
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13
120

0
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
155beb740c43e82fbeab5b91b0d4b08b7d63a8e0b3df7f0cf26e3143f6edc0b2
632
/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv
3
/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top
42ff5548f43ecaac9d43b6ae1f0974df0db08499b1952a372500ea67cc4375c9
224
/nix/store/l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv
2
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
";

/// `registration` as nixpkgs' closureInfo builds it from ATTRS_JSON with
/// `jq -r '.closure | map([.path, .narHash, .narSize, "", (.references |
/// length)] + .references) | add | map("\(.)\n") | add' | head -n -1`.
const CLOSURE_INFO_REGISTRATION: &str = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
sha256:1n6yxrfa102vp3sch9qx8xrqpd40bja6kdpcsczd7cwph07a8sqb
144

0
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
sha256:07y32ljqjzpgw56dgrwfs7f0illrfg8bgkfq0d89p01m677grk1p
120

0
/nix/store/phh6bj29y3b16y61m70ddckmxmqa50ng-top
sha256:1jbm8g66gsh04lvjm5dik62b03fzfh4izbmn8ffsrjiyyi45bzs2
224

2
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file
sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
120

0
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
sha256:1cn0xpv46cbfy867zpxkw2l66zcbn3ab14avmfz2zs231isfnnqm
632

3
/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting
/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat
/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref
";

// Hand-written in the newer shapes (see the module documentation for the
// sources), holding the same data as PATH_INFO_LIST for the closed
// subset greeting, fod-flat, added-file, self-ref.

/// Nix 2.23–2.32 `nix path-info --json`: keyed by absolute path, absent
/// values as `null`.
const PATH_INFO_OBJECT: &str = r#"{
  "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {"ca":"text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi","deriver":null,"narHash":"sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=","narSize":144,"references":[],"registrationTime":1795537333,"signatures":[],"ultimate":false},
  "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {"ca":"fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c","deriver":"/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv","narHash":"sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"ultimate":true},
  "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {"ca":"fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw","deriver":null,"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"ultimate":false},
  "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {"ca":null,"deriver":"/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv","narHash":"sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=","narSize":632,"references":["/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting","/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat","/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"registrationTime":1795537333,"signatures":["test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="],"ultimate":true}
}"#;

/// Nix ≥ 2.33 `nix path-info --json --json-format 1`.
const PATH_INFO_V1: &str = r#"{
  "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {"ca":"text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi","deriver":null,"narHash":"sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=","narSize":144,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":1},
  "/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {"ca":"fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c","deriver":"/nix/store/z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv","narHash":"sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":true,"version":1},
  "/nix/store/xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {"ca":"fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw","deriver":null,"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":1},
  "/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {"ca":null,"deriver":"/nix/store/4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv","narHash":"sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=","narSize":632,"references":["/nix/store/1jk14awh1ikhpn63isz3qhr45gnci589-greeting","/nix/store/3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat","/nix/store/zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"registrationTime":1795537333,"signatures":["test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="],"storeDir":"/nix/store","ultimate":true,"version":1}
}"#;

/// Nix ≥ 2.33 `nix path-info --json --json-format 2`.
const PATH_INFO_V2: &str = r#"{
  "info": {
    "1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {
      "ca": {
        "hash": "sha256-0V9QBPkC6IAUb851TsJSoZ5YuC2pcixI9sgA6WJCUXg=",
        "method": "text"
      },
      "deriver": null,
      "narHash": "sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=",
      "narSize": 144,
      "references": [],
      "registrationTime": 1795537333,
      "signatures": [],
      "storeDir": "/nix/store",
      "ultimate": false,
      "version": 2
    },
    "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {
      "ca": {
        "hash": "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=",
        "method": "flat"
      },
      "deriver": "z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv",
      "narHash": "sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=",
      "narSize": 120,
      "references": [],
      "registrationTime": 1795537333,
      "signatures": [],
      "storeDir": "/nix/store",
      "ultimate": true,
      "version": 2
    },
    "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {
      "ca": {
        "hash": "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
        "method": "nar"
      },
      "deriver": null,
      "narHash": "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
      "narSize": 120,
      "references": [],
      "registrationTime": 1795537333,
      "signatures": [],
      "storeDir": "/nix/store",
      "ultimate": false,
      "version": 2
    },
    "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {
      "ca": null,
      "deriver": "4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv",
      "narHash": "sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=",
      "narSize": 632,
      "references": [
        "1jk14awh1ikhpn63isz3qhr45gnci589-greeting",
        "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat",
        "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"
      ],
      "registrationTime": 1795537333,
      "signatures": [
        "test-key-1:ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="
      ],
      "storeDir": "/nix/store",
      "ultimate": true,
      "version": 2
    }
  },
  "storeDir": "/nix/store",
  "version": 2
}
"#;

/// Nix ≥ 2.35 `nix path-info --json --json-format 3`.
const PATH_INFO_V3: &str = r#"{"version":3,"storeDir":"/nix/store","info":{
  "1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {"ca":{"hash":"sha256-0V9QBPkC6IAUb851TsJSoZ5YuC2pcixI9sgA6WJCUXg=","method":"text"},"deriver":null,"narHash":"sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=","narSize":144,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":3},
  "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat": {"ca":{"hash":"sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=","method":"flat"},"deriver":"z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv","narHash":"sha256-N8z8zjE1gJtQA9jNt9BzmdII3NGO59dM4e9+iSUVwx8=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":true,"version":3},
  "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file": {"ca":{"hash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","method":"nar"},"deriver":null,"narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"registrationTime":1795537333,"signatures":[],"storeDir":"/nix/store","ultimate":false,"version":3},
  "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref": {"ca":null,"deriver":"4hrvcfxmfgw0k0wn85xwf98q35g6dsp4-self-ref.drv","narHash":"sha256-FVvrdAxD6C++q1uRsNSwi31jqOCz338M8m4xQ/btwLI=","narSize":632,"references":["1jk14awh1ikhpn63isz3qhr45gnci589-greeting","3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat","zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref"],"registrationTime":1795537333,"signatures":[{"keyName":"test-key-1","sig":"ueIgvkt8CB+wyzFNXuD8SCllGIteF4cp6KPn74KH1id8R3DdKB+wDeZMWHxKqxoTSS9TzQ4Ejqi0y4OQv5dBCw=="}],"storeDir":"/nix/store","ultimate":true,"version":3}
}}"#;

/// Unreleased Nix between 2.32 and 2.33 (commits bec3c5cfcd,
/// caa196e31d): hashes as `{algorithm, format, hash}` objects.
const STRUCTURED_HASHES: &str = r#"{"version":2,"storeDir":"/nix/store","info":{
  "1jk14awh1ikhpn63isz3qhr45gnci589-greeting": {
    "ca":{"method":"text","hash":{"algorithm":"sha256","format":"base64","hash":"0V9QBPkC6IAUb851TsJSoZ5YuC2pcixI9sgA6WJCUXg="}},
    "narHash":{"algorithm":"sha256","format":"base16","hash":"0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded8"},
    "narSize":144,"references":[],"storeDir":"/nix/store","version":2
  }
}}"#;

const STORE: &StoreDir = &StoreDir::NIX;
const GREETING: &str = "1jk14awh1ikhpn63isz3qhr45gnci589-greeting";
const FOD_FLAT: &str = "3qxhcxqpk7pzy92qrip3v5m74vzxjwv5-fod-flat";
const ADDED_FILE: &str = "xcbmgb2r29nifswqzyvakcww51f7vcnw-added-file";
const SELF_REF: &str = "zwby0s3g0p3fmr4q2y3rvnf6zrlxqhqk-self-ref";
const TOP: &str = "phh6bj29y3b16y61m70ddckmxmqa50ng-top";

fn read(text: &str) -> (Closure, ClosureFormat) {
    read_closure(text.as_bytes(), "fixture", STORE).unwrap_or_else(|e| panic!("{e}"))
}

fn read_err(text: &str) -> ClosureError {
    match read_closure(text.as_bytes(), "fixture", STORE) {
        Ok((_, format)) => panic!("read as {format}, expected an error"),
        Err(e) => e,
    }
}

fn path(basename: &str) -> StorePath {
    StorePath::from_basename(basename).unwrap()
}

fn info<'a>(closure: &'a Closure, basename: &str) -> &'a PathInfo {
    closure.require(&path(basename)).unwrap()
}

/// What every format carries: path, NAR hash and size, references.
fn core(closure: &Closure) -> Vec<(StorePath, NarHash, u64, Vec<StorePath>)> {
    closure
        .iter()
        .map(|i| (i.path.clone(), i.nar_hash, i.nar_size, i.references.clone()))
        .collect()
}

/// PATH_INFO_LIST without `top`: what the hand-written fixtures hold.
fn list_subset() -> Closure {
    let (full, _) = read(PATH_INFO_LIST);
    let subset = full.iter().filter(|i| i.path.basename() != TOP).cloned();
    Closure::new(STORE, subset).unwrap()
}

#[test]
fn reads_structured_attrs_json() {
    let (closure, format) = read(ATTRS_JSON);
    assert_eq!(format, ClosureFormat::ExportReferencesGraph);
    assert_eq!(closure.len(), 5);
    assert_eq!(closure.store_dir(), STORE);
    let self_ref = info(&closure, SELF_REF);
    assert_eq!(
        self_ref.references,
        [path(GREETING), path(FOD_FLAT), path(SELF_REF)]
    );
    assert_eq!(self_ref.nar_size, 632);
    assert_eq!(
        self_ref.nar_hash.to_nix32_string(),
        "sha256:1cn0xpv46cbfy867zpxkw2l66zcbn3ab14avmfz2zs231isfnnqm"
    );
    assert_eq!(self_ref.deriver, None);
    assert_eq!(
        info(&closure, GREETING).ca.as_deref(),
        Some("text:sha256:0y2i89ifj068yr42qwm95nw5i7m1ab14wxffdwa81s02z4250pyi")
    );
    assert_eq!(
        info(&closure, FOD_FLAT).ca.as_deref(),
        Some("fixed:sha256:0d75vbn546fz9d9ip0f03daqhpm99h3fv14ci4afcmk3ir0p2c0c")
    );
    assert_eq!(
        info(&closure, ADDED_FILE).ca.as_deref(),
        Some("fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw")
    );
    assert_eq!(info(&closure, TOP).ca, None);
    assert_eq!(closure.total_nar_size(), 144 + 120 + 224 + 120 + 632);
}

#[test]
fn reads_the_bare_export_array() {
    let attrs: Value = serde_json::from_str(ATTRS_JSON).unwrap();
    let bare = attrs["closure"].to_string();
    let (closure, format) = read(&bare);
    assert_eq!(format, ClosureFormat::ExportReferencesGraph);
    assert_eq!(closure, read(ATTRS_JSON).0);

    // Newer Nix adds `"valid": true` to each element.
    let with_valid = bare.replace("\"path\":", "\"valid\":true,\"path\":");
    assert_eq!(read(&with_valid), (closure, format));
}

#[test]
fn reads_the_nix_2_8_path_info_list() {
    let (closure, format) = read(PATH_INFO_LIST);
    assert_eq!(format, ClosureFormat::PathInfoList);
    assert_eq!(closure.len(), 5);
    let top = info(&closure, TOP);
    assert_eq!(
        top.deriver,
        Some(path("l93y1q47i3mld14vnix4gq8jlj8dgjg8-top.drv"))
    );
    assert_eq!(
            top.signatures,
            ["test-key-1:GDdkQMUC9l7VHspEimrclou5fUzMaknAQnEqKX0txiwxSL4dXdt7qO2zwQDILNnh3tazED0PO/RGgNPC+hcACw=="]
        );
    assert_eq!(top.references, [path(ADDED_FILE), path(SELF_REF)]);
    assert!(info(&closure, SELF_REF)
        .references
        .contains(&path(SELF_REF)));
    assert_eq!(info(&closure, GREETING).deriver, None);
}

#[test]
fn reads_dump_db_and_closure_info_registrations() {
    let (dumped, format) = read(DUMP_DB);
    assert_eq!(format, ClosureFormat::Registration);
    assert_eq!(dumped.len(), 5);
    assert_eq!(
        info(&dumped, FOD_FLAT).deriver,
        Some(path("z6j5lhpzsl81g17vispq6xklbplyakbs-fod-flat.drv"))
    );
    assert!(info(&dumped, SELF_REF).references.contains(&path(SELF_REF)));

    let (registration, format) = read(CLOSURE_INFO_REGISTRATION);
    assert_eq!(format, ClosureFormat::Registration);
    assert_eq!(core(&registration), core(&dumped));

    // Without the trailing newline, and with one extra blank line.
    let trimmed = CLOSURE_INFO_REGISTRATION.trim_end();
    assert_eq!(read(trimmed).0, registration);
    assert_eq!(read(&format!("{trimmed}\n\n")).0, registration);
}

#[test]
fn real_formats_agree_on_the_same_closure() {
    let (graph, _) = read(ATTRS_JSON);
    let (list, _) = read(PATH_INFO_LIST);
    let (dumped, _) = read(DUMP_DB);
    let (registration, _) = read(CLOSURE_INFO_REGISTRATION);
    assert_eq!(core(&graph), core(&list));
    assert_eq!(core(&graph), core(&dumped));
    // closureInfo's registration is exportReferencesGraph data minus ca.
    let graph_without_ca = graph.iter().cloned().map(|i| PathInfo { ca: None, ..i });
    assert_eq!(registration, Closure::new(STORE, graph_without_ca).unwrap());
    // Content addresses: exportReferencesGraph and path-info.
    let cas = |c: &Closure| c.iter().map(|i| i.ca.clone()).collect::<Vec<_>>();
    assert_eq!(cas(&graph), cas(&list));
    // Derivers: path-info and --dump-db.
    let derivers = |c: &Closure| c.iter().map(|i| i.deriver.clone()).collect::<Vec<_>>();
    assert_eq!(derivers(&list), derivers(&dumped));
}

#[test]
fn reads_the_newer_path_info_shapes() {
    let expected = list_subset();
    for (text, format) in [
        (PATH_INFO_OBJECT, ClosureFormat::PathInfoObject),
        (PATH_INFO_V1, ClosureFormat::PathInfoJsonV1),
        (PATH_INFO_V2, ClosureFormat::PathInfoJsonV2),
        (PATH_INFO_V3, ClosureFormat::PathInfoJsonV3),
    ] {
        let (closure, read_format) = read(text);
        assert_eq!(read_format, format);
        assert_eq!(closure, expected, "{format}");
    }
}

#[test]
fn reads_the_2_19_object_without_nulls() {
    // 2.19–2.22 leave absent fields out instead of writing null.
    let object: Value = serde_json::from_str(PATH_INFO_OBJECT).unwrap();
    let mut object = object.as_object().unwrap().clone();
    for value in object.values_mut() {
        value.as_object_mut().unwrap().retain(|_, v| !v.is_null());
    }
    let text = Value::Object(object).to_string();
    assert_eq!(read(&text), (list_subset(), ClosureFormat::PathInfoObject));
}

#[test]
fn converts_structured_hashes_and_content_addresses() {
    let (closure, format) = read(STRUCTURED_HASHES);
    assert_eq!(format, ClosureFormat::PathInfoJsonV2);
    let expected = info(&list_subset(), GREETING).clone();
    assert_eq!(info(&closure, GREETING), &expected);

    let ca = |json: &str| content_address_text(&serde_json::from_str(json).unwrap());
    // sha1("test"); the nix32 spelling is from `nix hash to-base32`.
    assert_eq!(
        ca(r#"{"method":"git","hash":"sha1-qUqP5cyxm6YcTAhz05Hph5uPu9M="}"#).unwrap(),
        "fixed:git:sha1:sfxqz6w7x68x6wq89hfad6xirkjqyjm9"
    );
    let base16_object = r#"{"method":"flat","hash":{"algorithm":"sha1","format":"base16",
            "hash":"a94a8fe5ccb19ba61c4c0873d391e9879b8fbbd3"}}"#;
    assert_eq!(
        ca(base16_object).unwrap(),
        "fixed:sha1:sfxqz6w7x68x6wq89hfad6xirkjqyjm9"
    );
    let nix32_object = r#"{"method":"nar","hash":{"algorithm":"sha256","format":"nix32",
            "hash":"04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"}}"#;
    assert_eq!(
        ca(nix32_object).unwrap(),
        "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
    );
    assert!(ca(r#"{"method":"zip","hash":"sha1-qUqP5cyxm6YcTAhz05Hph5uPu9M="}"#).is_err());
    assert!(ca(r#"{"method":"nar","hash":"sha256-qUqP5cyxm6YcTAhz05Hph5uPu9M="}"#).is_err());
}

#[test]
fn accepts_a_different_store_dir_when_asked_for_it() {
    let moved = PATH_INFO_V1.replace("/nix/store", "/gnu/store");
    let (closure, _) = read_closure(
        moved.as_bytes(),
        "fixture",
        &StoreDir::new("/gnu/store/").unwrap(),
    )
    .unwrap();
    assert_eq!(closure.store_dir().as_str(), "/gnu/store");
    assert_eq!(closure.len(), 4);
}

#[test]
fn invalid_paths_are_errors_naming_the_path() {
    let missing = "/nix/store/00000000000000000000000000000000-missing";
    let v2_null = format!(
        r#"{{"version":2,"storeDir":"/nix/store","info":{{"{}":null}}}}"#,
        &missing[11..]
    );
    let export_invalid = format!(r#"[{{"path":"{missing}","valid":false}}]"#);
    for text in [
        PATH_INFO_LIST_WITH_INVALID.to_owned(),
        format!(r#"{{"{missing}":null}}"#),
        v2_null,
        export_invalid,
    ] {
        let err = read_err(&text);
        assert!(matches!(err, ClosureError::InvalidPath { .. }), "{err}");
        assert!(err.to_string().contains(missing), "{err}");
        assert!(err.to_string().contains("fixture"), "{err}");
    }
}

#[test]
fn malformed_store_paths_are_named() {
    // `e` is not a nix32 character.
    let bad = "/nix/store/1jk14awh1ikhpn63isz3qhr45gnci58e-greeting";
    let as_path = PATH_INFO_LIST.replacen(&format!("/nix/store/{GREETING}"), bad, 1);
    let err = read_err(&as_path);
    assert!(matches!(err, ClosureError::BadStorePath { .. }), "{err}");
    assert!(err.to_string().contains(bad), "{err}");

    let as_reference = PATH_INFO_LIST.replace(
        &format!("\"/nix/store/{SELF_REF}\"\n    ]"),
        &format!("\"{bad}\"\n    ]"),
    );
    let err = read_err(&as_reference);
    assert!(matches!(err, ClosureError::BadStorePath { .. }), "{err}");
    assert!(err.to_string().contains(bad), "{err}");

    let outside = DUMP_DB.replace(&format!("/nix/store/{TOP}"), &format!("/gnu/store/{TOP}"));
    let err = read_err(&outside);
    assert!(matches!(err, ClosureError::BadStorePath { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("/gnu/store/{TOP}")),
        "{err}"
    );
}

#[test]
fn bad_hashes_are_named() {
    let json = PATH_INFO_LIST.replace(
        "sha256-C2ukDoCXs9M+0+y2aZRcgLSLc0cdJ8j0uFuAoFzu3tg=",
        "md5-C2ukDoCXs9M+0+y2aZRcgA==",
    );
    let registration = DUMP_DB.replace(
        "0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded8",
        "0b6ba40e8097b3d33ed3ecb669945c80b48b73471d27c8f4b85b80a05ceeded",
    );
    let structured = STRUCTURED_HASHES.replace("\"base16\"", "\"base17\"");
    for text in [json, registration, structured] {
        let err = read_err(&text);
        assert!(matches!(err, ClosureError::BadHash { .. }), "{err}");
        assert!(err.to_string().contains(GREETING), "{err}");
    }
}

#[test]
fn empty_inputs_are_errors() {
    let empty_attrs = r#"{"exportReferencesGraph":{"closure":[]},"closure":[]}"#;
    for text in [
        "",
        " \n",
        "[]",
        "{}",
        empty_attrs,
        r#"{"version":2,"info":{}}"#,
    ] {
        let err = read_err(text);
        assert!(matches!(err, ClosureError::Empty { .. }), "{text:?}: {err}");
    }
}

#[test]
fn duplicates_must_agree() {
    let list: Value = serde_json::from_str(PATH_INFO_LIST).unwrap();
    let mut items = list.as_array().unwrap().clone();
    items.push(items[0].clone());
    let (closure, _) = read(&Value::Array(items.clone()).to_string());
    assert_eq!(closure, read(PATH_INFO_LIST).0);

    let last = items.len() - 1;
    items[last]["narSize"] = 145.into();
    let err = read_err(&Value::Array(items).to_string());
    assert!(matches!(err, ClosureError::Conflicting { .. }), "{err}");
    assert!(err.to_string().contains(GREETING), "{err}");
}

#[test]
fn references_must_stay_inside_the_closure() {
    let list: Value = serde_json::from_str(PATH_INFO_LIST).unwrap();
    let without_greeting: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| !item["path"].as_str().unwrap().ends_with(GREETING))
        .cloned()
        .collect();
    let err = read_err(&Value::Array(without_greeting).to_string());
    assert!(
        matches!(err, ClosureError::DanglingReference { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(GREETING), "{err}");
}

#[test]
fn broken_json_reports_line_and_column() {
    let broken = PATH_INFO_LIST.replacen("\"narSize\": 144,", "\"narSize\": 144", 1);
    let err = read_err(&broken);
    assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("line 6 column"), "{err}");
}

#[test]
fn a_foreign_store_dir_is_rejected() {
    for text in [PATH_INFO_V1, PATH_INFO_V2] {
        let err = read_closure(
            text.as_bytes(),
            "fixture",
            &StoreDir::new("/gnu/store").unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("\"/nix/store\"") && message.contains("\"/gnu/store\""));
    }
}

#[test]
fn attrs_with_different_closures_are_ambiguous() {
    let mut attrs: Value = serde_json::from_str(ATTRS_JSON).unwrap();
    let closure = attrs["closure"].clone();
    attrs["exportReferencesGraph"]["again"] = Value::Array(vec![]);
    attrs["again"] = closure.clone();
    assert_eq!(read(&attrs.to_string()).0, read(ATTRS_JSON).0);

    let only_greeting: Vec<Value> = closure
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["path"].as_str().unwrap().ends_with(GREETING))
        .cloned()
        .collect();
    attrs["again"] = Value::Array(only_greeting);
    let err = read_err(&attrs.to_string());
    assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("`closure`") && message.contains("`again`"),
        "{err}"
    );

    // Without the `exportReferencesGraph` attribute, the arrays are found
    // by their shape.
    attrs
        .as_object_mut()
        .unwrap()
        .remove("exportReferencesGraph");
    let err = read_err(&attrs.to_string());
    assert!(err.to_string().contains("`again`"), "{err}");
}

#[test]
fn other_malformed_inputs() {
    let truncated = DUMP_DB.lines().take(8).collect::<Vec<_>>().join("\n");
    let not_a_number = DUMP_DB.replacen("144", "1x4", 1);
    // disko's closureInfo variant: path, deriver, count, references.
    let hashless = format!("/nix/store/{GREETING}\n\n0\n");
    let cases = [
        ("hello", "neither JSON"),
        (r#"{"name":"x","system":"y"}"#, "not a closure"),
        (
            r#"{"version":4,"storeDir":"/nix/store","info":{}}"#,
            "version 4",
        ),
        (&truncated, "ends where its deriver"),
        (&not_a_number, "line 3"),
        (&hashless, "has no NAR hash"),
        (r#"[{"narHash":"x"}]"#, "no string field `path`"),
        ("[1]", "array[0] is not an object"),
        (r#"{"/nix/store/x": 1}"#, "neither an object nor null"),
    ];
    for (text, expected) in cases {
        let err = read_err(text);
        assert!(matches!(err, ClosureError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{text}: {err}");
    }
    let missing_size = PATH_INFO_LIST.replacen("\"narSize\": 144,", "", 1);
    let err = read_err(&missing_size);
    assert!(err.to_string().contains(GREETING) && err.to_string().contains("narSize"));
}

#[test]
fn formats_have_distinct_names() {
    let names: std::collections::BTreeSet<String> = [
        ClosureFormat::ExportReferencesGraph,
        ClosureFormat::PathInfoList,
        ClosureFormat::PathInfoObject,
        ClosureFormat::PathInfoJsonV1,
        ClosureFormat::PathInfoJsonV2,
        ClosureFormat::PathInfoJsonV3,
        ClosureFormat::Registration,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names.len(), 7);
}
