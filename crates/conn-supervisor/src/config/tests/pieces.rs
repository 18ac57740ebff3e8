//! A file read one `[[encoder]]` table at a time (`split`) says exactly what the whole
//! document says, and a file that cannot be cut safely is read whole. `parse` checks
//! the first in every test of the configuration; these tests pick the files where
//! cutting is hard.

use super::*;

/// Whether `text` is read in pieces (rather than falling back to the whole document).
fn read_in_pieces(text: &str) -> bool {
    FleetConfig::parse_in_pieces("fleet.toml", text, &|_| None, None).is_some()
}

#[test]
fn an_ordinary_fleet_file_is_read_in_pieces_with_every_line_right() {
    // Settings after the encoders, CRLF line ends, comments, an encoder with a
    // sub-table, a mistake in the last encoder and one in [defaults].
    let text = "admin_listen = \"127.0.0.1:9898\"\r\n\
                # cameras\r\n\
                [[encoder]]\r\n\
                id = \"a\"\r\n\
                url = \"http://10.0.0.1\"\r\n\
                [encoder.overrides]\r\n\
                check_interval = \"5s\"\r\n\
                \r\n\
                [defaults]\r\n\
                check_intervall = \"9s\"\r\n\
                [[ encoder ]] # hall\r\n\
                id = \"b\"\r\n\
                url = \"http://10.0.0.2\"\r\n\
                colour = \"red\"\r\n";
    assert!(read_in_pieces(text));
    let err = parse(text).unwrap_err();
    let found: Vec<(String, Option<usize>)> =
        err.issues.iter().map(|i| (i.key.clone(), i.line)).collect();
    assert_eq!(
        found,
        [
            ("defaults.check_intervall".to_string(), Some(10)),
            ("encoder[1].colour".to_string(), Some(14)),
        ],
        "{err}"
    );

    let good = text
        .replace("check_intervall", "check_interval")
        .replace("colour = \"red\"\r\n", "");
    assert!(read_in_pieces(&good));
    let cfg = parse(&good).unwrap();
    let ids: Vec<&str> = cfg.encoders.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let intervals: Vec<Duration> = cfg
        .encoders
        .iter()
        .map(|e| e.tunables.check_interval)
        .collect();
    assert_eq!(intervals, [Duration::from_secs(5), Duration::from_secs(9)]);
    // Without overrides an encoder shares the fleet's defaults.
    assert_eq!(*cfg.encoders[1].tunables, cfg.defaults);
}

#[test]
fn files_that_cannot_be_cut_are_read_whole_with_the_same_answer() {
    let cases = [
        // A header-like line inside a multi-line string at the top…
        "admin_listen = \"\"\"\n[[encoder]]\nid = \"x\"\n\"\"\"\n",
        // …and inside an encoder's value.
        "[[encoder]]\nid = \"\"\"\n[defaults]\n\"\"\"\nurl = \"http://h\"\n[[encoder]]\nid = \"b\"\nurl = \"http://h\"\n",
        // `[encoder]` and `[[encoder]]` together: a duplicate key.
        "[encoder]\nid = \"a\"\n[[encoder]]\nid = \"b\"\nurl = \"http://h\"\n",
        // The array written inline and as tables.
        "encoder = [{ id = \"a\", url = \"http://h\" }]\n[[encoder]]\nid = \"b\"\nurl = \"http://h\"\n",
        // A quoted key, and a sub-table before any encoder.
        "[\"encoder\".overrides]\nx = 1\n[[encoder]]\nid = \"b\"\nurl = \"http://h\"\n",
        "[encoder.overrides]\nx = 1\n[[encoder]]\nid = \"b\"\nurl = \"http://h\"\n",
        // A syntax error in the second encoder: its place must be the file's.
        "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n[[encoder]]\nid = \"b\"\nurl = http://h\n",
        // An array whose element line starts with `[`.
        "[[encoder]]\nid = \"a\"\nurl = \"http://h\"\nhold = [\n[1],\n]\n",
    ];
    for text in cases {
        assert!(!read_in_pieces(text), "cut although it cannot be: {text:?}");
        // `parse` compares with the whole reading; every one of these is refused.
        let err = parse(text).expect_err(text);
        assert!(!err.issues.is_empty());
    }
    let syntax = parse(cases[6]).unwrap_err();
    assert_eq!(syntax.issues.len(), 1, "{syntax}");
    assert_eq!(syntax.issues[0].line, Some(6), "{syntax}");
}
