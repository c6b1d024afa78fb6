//! Unit tests of the `debug` key: which kernel debug outputs (console text, defmt records) a
//! server may use, as the capabilities `debug:console` and `debug:log` in the last slot group,
//! and the boot-info names the servers look them up by.

use super::{F, caps, decode, ep, fake_elf, plan};
use crate::Manifest;
use abi::Rights;
use bootdesc::{CapObject, Record, bootinfo};
use std::collections::BTreeMap;

const DEBUG: &str = r#"
[system]
name = "debug"

[servers.boss]
binary = "supervisor"
priority = 200
supervisor = true
debug = ["log", "console"]

[servers.talker]
binary = "talker"
priority = 100
system_control = true
debug = ["console"]

[servers.mute]
binary = "mute"
priority = 90

[servers.logger]
binary = "logger"
priority = 80
debug = ["log"]

[servers.empty]
binary = "empty"
priority = 70
debug = []

[endpoints.report]
server = "talker"
clients = ["mute"]
"#;

#[test]
fn debug_outputs_become_the_last_capabilities_in_a_fixed_order() {
    let plan = plan(DEBUG);
    assert_eq!(
        caps(&plan, "boss")[5..],
        [
            ("debug:console".into(), F + 5, CapObject::DebugConsole),
            ("debug:log".into(), F + 6, CapObject::DebugLog),
        ],
        "console before log whatever order the key lists them in"
    );
    assert_eq!(
        caps(&plan, "talker"),
        [
            ("report".into(), F, ep(0, 0, Rights::READ)),
            ("system".into(), F + 1, CapObject::SystemControl),
            ("debug:console".into(), F + 2, CapObject::DebugConsole),
        ]
    );
    assert_eq!(
        caps(&plan, "mute"),
        [("report".into(), F, ep(0, 3, Rights::WRITE))],
        "no `debug` key: no console, no log"
    );
    assert_eq!(
        caps(&plan, "logger"),
        [("debug:log".into(), F, CapObject::DebugLog)]
    );
    assert_eq!(caps(&plan, "empty"), []);
    assert_eq!(crate::DEBUG_CONSOLE, abi::DEBUG_CONSOLE_CAP);
    assert_eq!(crate::DEBUG_LOG, abi::DEBUG_LOG_CAP);
}

#[test]
fn debug_capabilities_reach_the_payload_and_the_boot_info_names() {
    let manifest = Manifest::from_str(DEBUG, "debug.toml").unwrap_or_else(|e| panic!("{e}"));
    let images: BTreeMap<String, Vec<u8>> = (manifest.plan.servers.iter().enumerate())
        .map(|(i, s)| (s.name.clone(), fake_elf(i as u8 + 1, 100)))
        .collect();
    let payload = manifest
        .payload(&images)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, records) = decode(&payload);
    let debug_caps: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Cap(c) if matches!(c.object, CapObject::DebugConsole | CapObject::DebugLog) => {
                Some((c.server, c.slot, c.object))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        debug_caps,
        [
            (0, F + 5, CapObject::DebugConsole),
            (0, F + 6, CapObject::DebugLog),
            (1, F + 2, CapObject::DebugConsole),
            (3, F, CapObject::DebugLog),
        ]
    );
    let servers: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Server(s) => Some(s),
            _ => None,
        })
        .collect();
    let find = |server: usize, name: &str| bootinfo::find_cap(servers[server].bootinfo, name);
    assert_eq!(find(1, abi::DEBUG_CONSOLE_CAP), Some(F + 2));
    assert_eq!(find(1, abi::DEBUG_LOG_CAP), None);
    assert_eq!(find(2, abi::DEBUG_CONSOLE_CAP), None);
    assert_eq!(find(2, abi::DEBUG_LOG_CAP), None);
    assert_eq!(find(3, abi::DEBUG_LOG_CAP), Some(F));
}

#[test]
fn debug_names_cannot_clash_with_manifest_names() {
    // An endpoint may be called `console` or `log`: the debug capabilities' names have a `:`.
    let text = DEBUG.replace("[endpoints.report]", "[endpoints.console]");
    let plan = plan(&text);
    let names: Vec<_> = caps(&plan, "talker").into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["console", "system", "debug:console"]);
}

#[test]
fn bad_debug_values_are_refused_with_their_line_and_key() {
    let error = |debug: &str| {
        let text = DEBUG.replace(r#"debug = ["console"]"#, &format!("debug = {debug}"));
        match Manifest::from_str(&text, "debug.toml") {
            Ok(_) => panic!("accepted debug = {debug}"),
            Err(error) => error.to_string(),
        }
    };
    assert_eq!(
        error(r#"["console", "text"]"#),
        "debug.toml:15:21: servers.talker.debug[1]: unknown debug output \"text\" (expected \
         \"console\", \"log\" or \"input\")"
    );
    assert_eq!(
        error(r#"["console", "console"]"#),
        "debug.toml:15:21: servers.talker.debug[1]: debug output \"console\" is listed twice"
    );
    assert_eq!(
        error(r#"[1]"#),
        "debug.toml:15:10: servers.talker.debug[0]: expected \"console\", \"log\" or \"input\", \
         found an integer"
    );
    assert_eq!(
        error(r#""console""#),
        "debug.toml:15:9: servers.talker.debug: expected an array of \"console\", \"log\" and \
         \"input\", found a string"
    );
}

#[test]
fn console_input_has_one_reader_and_a_bound_notification_names_its_waiter() {
    let text = DEBUG
        .replace(r#"debug = ["console"]"#, r#"debug = ["console", "input"]"#)
        .replace(
            "[endpoints.report]",
            "[notifications.talker-events]\nwaiter = \"talker\"\nbind = true\n\n[endpoints.report]",
        );
    let plan = plan(&text);
    assert_eq!(
        caps(&plan, "talker").last(),
        Some(&("debug:input".into(), F + 4, CapObject::DebugInput)),
        "input after console"
    );
    assert_eq!(plan.notifications, [("talker-events".to_string(), Some(1))]);
    let error = |text: &str| match Manifest::from_str(text, "debug.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error.to_string(),
    };
    let two_readers = text.replace(r#"debug = ["log"]"#, r#"debug = ["log", "input"]"#);
    assert!(
        error(&two_readers).contains(
            "servers.logger.debug: servers `talker` and `logger` both ask for \"input\"; the console has one reader"
        ),
        "{}",
        error(&two_readers)
    );
    let two_bound = text.replace(
        "[endpoints.report]",
        "[notifications.more]\nwaiter = \"talker\"\nbind = true\n\n[endpoints.report]",
    );
    assert!(
        error(&two_bound).contains("notifications.more.bind: server `talker` is already bound"),
        "{}",
        error(&two_bound)
    );
    let unbound = text.replace("bind = true", "bind = false");
    assert_eq!(
        plan_notifications(&unbound),
        [("talker-events".to_string(), None)]
    );
}

fn plan_notifications(text: &str) -> Vec<(String, Option<u16>)> {
    plan(text).notifications
}
