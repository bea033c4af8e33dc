//! Turning an `init` node's machine configuration into a `controlplane` one: only the
//! `machine.type` line of the v1alpha1 document changes, everything else (comments, order, other
//! documents, secrets) stays byte for byte. The result is parsed again and compared with the
//! original, so an edit that changed anything else is refused rather than applied.

use serde::Deserialize as _;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigEditError {
    #[error("it is not valid YAML: {0}")]
    Yaml(String),
    #[error("it has no v1alpha1 document")]
    NoV1Alpha1,
    #[error("its v1alpha1 document has no machine.type line")]
    NoMachineType,
    #[error("machine.type is {0:?}, not init: there is nothing to convert")]
    NotInit(String),
    #[error(
        "the edited config does not read back as the same config with machine.type controlplane"
    )]
    Unexpected,
}

fn documents(text: &str) -> Result<Vec<serde_yaml::Value>, ConfigEditError> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            serde_yaml::Value::deserialize(d).map_err(|e| ConfigEditError::Yaml(e.to_string()))
        })
        .collect()
}

fn is_v1alpha1(doc: &serde_yaml::Value) -> bool {
    doc.get("version").and_then(|v| v.as_str()) == Some("v1alpha1")
}

fn machine_type(doc: &serde_yaml::Value) -> Option<&str> {
    doc.get("machine")?.get("type")?.as_str()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The line index of `type:` directly under the top-level `machine:` key of the document that
/// spans `lines`.
fn type_line(lines: &[&str]) -> Option<usize> {
    let machine = lines.iter().position(|l| {
        indent(l) == 0 && l.trim_end().split('#').next().map(str::trim_end) == Some("machine:")
    })?;
    let mut child_indent = None;
    for (i, line) in lines.iter().enumerate().skip(machine + 1) {
        if !is_content(line) {
            continue;
        }
        let n = indent(line);
        if n == 0 {
            return None;
        }
        let child = *child_indent.get_or_insert(n);
        if n == child && line.trim_start().starts_with("type:") {
            return Some(i);
        }
    }
    None
}

/// The same config with `machine.type: controlplane` in its v1alpha1 document.
pub fn to_controlplane(config: &[u8]) -> Result<Vec<u8>, ConfigEditError> {
    let text = std::str::from_utf8(config).map_err(|e| ConfigEditError::Yaml(e.to_string()))?;
    let before = documents(text)?;
    let index = before
        .iter()
        .position(is_v1alpha1)
        .ok_or(ConfigEditError::NoV1Alpha1)?;
    match machine_type(&before[index]) {
        Some("init") => {}
        Some(other) => return Err(ConfigEditError::NotInit(other.to_string())),
        None => return Err(ConfigEditError::NoMachineType),
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Documents are separated by `---` lines; find the line range of the v1alpha1 one.
    let mut starts = vec![0];
    for (i, line) in lines.iter().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            starts.push(i + 1);
        }
    }
    starts.push(lines.len());
    let mut edited = None;
    for range in starts.windows(2) {
        let (from, to) = (range[0], range[1]);
        let Ok(docs) = documents(&lines[from..to].concat()) else {
            continue;
        };
        if !docs.first().is_some_and(is_v1alpha1) {
            continue;
        }
        let found = type_line(&lines[from..to]).ok_or(ConfigEditError::NoMachineType)?;
        let i = from + found;
        let line = lines[i];
        let (value_part, comment) = match line.find(" #") {
            Some(at) => (&line[..at], &line[at..]),
            None => (line.trim_end_matches(['\n', '\r']), ""),
        };
        let value = value_part.trim_start()["type:".len()..].trim();
        let replacement = match value {
            "init" => "controlplane",
            "\"init\"" => "\"controlplane\"",
            "'init'" => "'controlplane'",
            _ => return Err(ConfigEditError::Unexpected),
        };
        let ending = &line[line.trim_end_matches(['\n', '\r']).len()..];
        let comment = comment.trim_end_matches(['\n', '\r']);
        let new_line = format!(
            "{}type: {replacement}{comment}{ending}",
            " ".repeat(indent(line))
        );
        let mut out = lines.clone();
        out[i] = &new_line;
        edited = Some(out.concat());
        break;
    }
    let edited = edited.ok_or(ConfigEditError::NoMachineType)?;
    let mut expected = before;
    if let Some(machine) = expected[index].get_mut("machine") {
        machine["type"] = serde_yaml::Value::String("controlplane".into());
    }
    if documents(&edited)? != expected {
        return Err(ConfigEditError::Unexpected);
    }
    Ok(edited.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "version: v1alpha1 # the config version\ndebug: false\nmachine:\n  # what this node is\n  type: init # set by talosctl gen config\n  token: abc.def\n  install:\n    disk: /dev/sda\n    type: ignored-nested\ncluster:\n  controlPlane:\n    endpoint: https://10.0.0.2:6443\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-1\n";

    #[test]
    fn only_the_machine_type_line_changes() {
        let out = to_controlplane(CONFIG.as_bytes()).expect("converts");
        let out = String::from_utf8(out).expect("utf8");
        assert_eq!(
            out,
            CONFIG.replace("  type: init # set by", "  type: controlplane # set by")
        );
        let quoted = CONFIG.replace("type: init #", "type: \"init\" #");
        let out = to_controlplane(quoted.as_bytes()).expect("converts");
        assert!(
            String::from_utf8(out)
                .expect("utf8")
                .contains("  type: \"controlplane\" #")
        );
    }

    #[test]
    fn other_documents_first_and_crlf_lines_are_kept() {
        let text = "apiVersion: v1alpha1\nkind: SideroLinkConfig\n---\nversion: v1alpha1\r\nmachine:\r\n    type: init\r\n    token: x\r\n";
        let out =
            String::from_utf8(to_controlplane(text.as_bytes()).expect("converts")).expect("utf8");
        assert_eq!(out, text.replace("type: init", "type: controlplane"));
    }

    #[test]
    fn refuses_what_it_cannot_convert_safely() {
        assert_eq!(
            to_controlplane(b"version: v1alpha1\nmachine:\n  type: controlplane\n"),
            Err(ConfigEditError::NotInit("controlplane".into()))
        );
        assert_eq!(
            to_controlplane(b"kind: HostnameConfig\nhostname: x\n"),
            Err(ConfigEditError::NoV1Alpha1)
        );
        // Flow style: the line cannot be found, so nothing is sent.
        assert_eq!(
            to_controlplane(b"version: v1alpha1\nmachine: {type: init}\n"),
            Err(ConfigEditError::NoMachineType)
        );
        assert!(matches!(
            to_controlplane(b"machine: [\n"),
            Err(ConfigEditError::Yaml(_))
        ));
    }
}
