//! The documents generated from the settings table: `--help` and `keymint.example.toml`.

use super::settings::SETTINGS;

/// The configuration part of `keymint --help`.
pub fn help() -> String {
    let mut out = String::from(
        "Configuration (environment, or the same keys in lower case without KEYMINT_ in a \
         --config TOML file; keymint.example.toml lists them all):\n",
    );
    for s in SETTINGS {
        let default = s
            .default
            .map(|d| format!(" [default: {d}]"))
            .unwrap_or_default();
        out.push_str(&format!("  {:<36} {}{default}\n", s.var(), s.help));
    }
    out.push_str(&format!("  {:<36} log filter [default: info]", "RUST_LOG"));
    out
}

/// A documented TOML file with every setting at its default (commented out).
pub fn example_toml() -> String {
    let mut out = String::from(
        "# keymint configuration: pass with `keymint --config keymint.toml serve`.\n\
         # Every key may also be set as an environment variable, KEYMINT_<KEY in upper case>,\n\
         # which wins over this file. Generated from src/config/settings.rs.\n",
    );
    for s in SETTINGS {
        out.push_str(&format!("\n# {}\n", s.help));
        match s.default {
            Some(d) => out.push_str(&format!("# {} = \"{d}\"\n", s.key)),
            None => out.push_str(&format!("# {} =\n", s.key)),
        }
    }
    out
}
