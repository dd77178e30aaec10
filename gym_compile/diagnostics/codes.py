"""The catalogue of diagnostic codes: the one place explain-code, docs/diagnostics.md and SARIF rules read.

Codes are stable: a code is never reused for another problem; retired codes stay listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from gym_compile.diagnostics import Severity


@dataclass(frozen=True)
class Code:
    code: str
    name: str  # kebab-case, for SARIF rule names and search
    title: str
    explanation: str
    fix: str  # an example fix, shown as it would be written
    severity: Severity = "error"


_CODES = [
    Code(
        "GYM001",
        "yaml-syntax",
        "YAML syntax error",
        "The file is not valid YAML: a bad indent, a tab used for indentation, an unclosed quote or "
        "bracket, or bytes that are not UTF-8. Nothing in the file can be checked until it parses.",
        "Indent with spaces only and close every quote and bracket:\n  policy_model:\n    responses_api_models: ...",
    ),
    Code(
        "GYM002",
        "duplicate-key",
        "Duplicate key",
        "The same key appears twice in one mapping. YAML parsers silently keep one of them, so one of the "
        "two values is ignored; gym-compile refuses to guess which one you meant.",
        "Delete or rename one of the two keys.",
    ),
    Code(
        "GYM003",
        "file-not-found",
        "File not found or not readable",
        "A config file, an include (config_paths), a server's file (a prompt template) or an output path "
        "does not exist, is a directory, or cannot be read. A relative path is looked for where NeMo Gym "
        "looks (--nemo-gym-root / NEMO_GYM_EXTRA_ROOTS, the NeMo Gym tree of the config, the working "
        "directory, an installed nemo-gym; a server's own folder first for its files), then next to the file "
        "that names it; the message lists every place looked.",
        "config_paths: [responses_api_models/openai_model/configs/openai_model.yaml]   # from the NeMo Gym root",
    ),
    Code(
        "GYM004",
        "include-cycle",
        "config_paths include cycle",
        "Files include each other (a.yaml includes b.yaml, which includes a.yaml), so there is no order "
        "in which to merge them.",
        "Remove one of the config_paths entries that closes the cycle.",
    ),
    Code(
        "GYM005",
        "not-a-mapping",
        "Top level is not a mapping",
        "A config file must be 'key: value' lines at the top level (server instances and settings); this "
        "one is empty, a list, or a single value.",
        "policy_model:\n  responses_api_models:\n    openai_model: {...}",
    ),
    Code(
        "GYM006",
        "unsupported-yaml",
        "Unsupported YAML construct",
        "Only plain YAML values are accepted: no !!python/... or custom tags, no mappings or lists used "
        "as keys, '<<' merge keys must merge mappings, and a tagged value must be readable as its tag (`!!int abc` is not). This keeps configs data, never code.",
        "Replace `!!python/object ...` with a plain value.",
    ),
    Code(
        "GYM007",
        "too-large",
        "File too large or too deep",
        "The file is over the size limit (20 MiB), has a line over 1 MiB, is nested more than 200 "
        "levels deep, refers to itself through an alias (a cycle), or expands to too many values "
        "through aliases (a 'billion laughs' document). The limits stop a bad file from exhausting "
        "memory or time.",
        "Split the file, or replace aliases (*name) that copy large anchors.",
    ),
    Code(
        "GYM008",
        "path-ambiguous",
        "A relative path names two different files",
        "A relative path in a config (an include, a dataset, a prompt template) exists in two of the places "
        "it is looked for, and the two files differ. gym-compile uses the one NeMo Gym would read (its roots "
        "first: --nemo-gym-root / NEMO_GYM_EXTRA_ROOTS, the NeMo Gym tree of the config, the working "
        "directory, an installed nemo-gym; the folder of the file that names it last) and names both.",
        "jsonl_fpath: resources_servers/my_env/data/example.jsonl   # from the NeMo Gym root, or an absolute path",
        "warning",
    ),
    Code(
        "GYM009",
        "interpolation-too-deep",
        "Interpolation chain too long",
        "A ${...} refers to a value that refers to another, and so on, for more than 64 links "
        "(a: ${b}, b: ${c}, ...). Resolving such a chain would exhaust the stack; a config needs a "
        "few links.",
        "Point the first value at the last one directly: a: ${z}",
    ),
    Code(
        "GYM010",
        "malformed-override",
        "Malformed command-line override",
        "A command-line argument with '=' or a leading '+'/'~' is an override, and this one does not "
        "follow the Hydra grammar (+key.sub=value, key=value, ++key=value, ~key) or its value does not "
        "parse as a YAML scalar, [list] or {map}.",
        '+policy_model.responses_api_models.openai_model.model=gpt-4.1 "+config_paths=[a.yaml,b.yaml]"',
    ),
    Code(
        "GYM011",
        "override-not-applicable",
        "Override does not apply",
        "An override names a path that cannot be set or deleted (a parent is a value, not a mapping, or "
        "the key to delete does not exist), or sets a top-level key that is neither a setting nor used by "
        "any ${...}: most likely a typo.",
        "+agent_name=simple_weather_simple_agent   # instead of +agentname=...",
    ),
    Code(
        "GYM020",
        "undefined-variable",
        "Undefined interpolation variable",
        "A ${name} refers to a key that no config file, env.yaml or override defines. Top-level names "
        "usually come from env.yaml; the hint says where env.yaml was looked for.",
        "# env.yaml\npolicy_api_key: sk-...\n# or: gym-compile --env path/to/env.yaml ...",
    ),
    Code(
        "GYM021",
        "interpolation-cycle",
        "Interpolation cycle",
        "Values refer to each other in a loop (a: ${b}, b: ${a}), so none of them has a value. Every "
        "link of the chain is listed with its location.",
        "Make one value of the chain a literal: b: https://api.openai.com/v1",
    ),
    Code(
        "GYM022",
        "mandatory-unset",
        "Mandatory value left as ???",
        "A value written as ??? must be supplied before running (usually on the command line). The hint "
        "names the override that sets it.",
        "+policy_model.responses_api_models.openai_model.model=gpt-4.1-2025-04-14",
    ),
    Code(
        "GYM023",
        "malformed-interpolation",
        "Malformed interpolation or unknown resolver",
        "A ${...} is not closed, is empty, or calls a resolver other than oc.env and oc.select. Write a "
        "literal '${' as '\\${'.",
        "base_url: ${oc.select:judge_base_url,${policy_base_url}}",
    ),
    Code(
        "GYM024",
        "env-var-unset",
        "Environment variable not set",
        "${oc.env:VAR} reads the process environment and VAR is not set, and no default was given.",
        "export VAR=...   or   ${oc.env:VAR,default}",
    ),
    Code(
        "GYM025",
        "directive-source-missing",
        "A directive names something that is not there",
        "An _inherit_from / _copy (or ${inherit_from:...} / ${copy:...}) names a path the merged config does "
        "not have, or a _delete_key names a key the inherited value does not bring. NeMo Gym stops with an "
        "error on both. Directive paths are written from the top of the merged config (a.b.c).",
        "my_agent:\n  _inherit_from: math_with_judge_simple_agent   # an instance defined by an included file",
    ),
    Code(
        "GYM026",
        "directive-malformed",
        "Malformed directive",
        "A directive's value is not what NeMo Gym can use: _inherit_from / _copy need a dotted path, "
        "_delete_key a comma-separated string of keys; a mapping cannot have both _inherit_from and _copy; keys "
        "beside a directive need a mapping to merge into.",
        '_delete_key: "max_output_tokens, temperature"',
    ),
    Code(
        "GYM027",
        "directive-not-applied",
        "Directive that NeMo Gym never applies",
        "NeMo Gym applies directives in one pass over the config as merged: the value a directive takes is "
        "the source as it was written, so a directive inside it (a chain: c inherits b, which inherits a) is "
        "copied along but never applied, and the result lacks what the inner directive would have brought.",
        "Inherit from an instance that has no directive of its own, or write the inherited content out.",
    ),
    Code(
        "GYM028",
        "delete-key-absent",
        "_delete_key names a key that is not there",
        "A _delete_key without _inherit_from / _copy names a key its mapping does not have, so nothing is "
        "deleted. NeMo Gym ignores it silently; it is most likely a misspelt key.",
        '_delete_key: "max_output_tokens"   # the exact key to drop',
        "warning",
    ),
    Code(
        "GYM029",
        "ambiguous-agent-rename",
        "Environment server refers to an agent inherited into several names",
        "When _inherit_from moves an agent instance to a new top-level name, NeMo Gym 0.7 points the "
        "environment servers that referred to the old name at the new one. When the agent was inherited into "
        "several names, an environment server still naming the old one is ambiguous, and NeMo Gym refuses "
        "the config.",
        "my_env_server:\n  environment_servers:\n    legacy_agent:\n      agent_server: {type: responses_api_agents, name: my_agent}",
    ),
    Code(
        "GYM030",
        "unknown-key",
        "Unknown key",
        "The key is not a field of this server implementation (or of the settings block). NeMo Gym "
        "ignores such keys silently; gym-compile reports them, with the closest allowed names.",
        "temperature belongs in responses_create_params, not in the model server config.",
    ),
    Code(
        "GYM031",
        "wrong-type",
        "Wrong type",
        "The value has the wrong type for its field (e.g. a string where a number is expected).",
        'timeouts: {connect: 5}   # a number of seconds, not "5s"',
    ),
    Code(
        "GYM032",
        "missing-required",
        "Missing required key",
        "A field the implementation needs is not set. NeMo Gym spellings (openai_api_key, ...) count "
        "as the canonical field.",
        "model_server: {type: responses_api_models, name: policy_model}",
    ),
    Code(
        "GYM033",
        "value-not-allowed",
        "Value not among the allowed ones",
        "The field accepts a fixed set of values and this is not one of them; all allowed values are listed.",
        "domain: agent",
    ),
    Code(
        "GYM034",
        "schema-violation",
        "Value breaks a schema rule",
        "The value breaks another rule of the implementation's schema (a pattern, a minimum, a length), "
        "or a field is set under both its NeMo Gym and its canonical name.",
        "base_url: https://api.openai.com/v1   # must start with http:// or https://",
    ),
    Code(
        "GYM035",
        "unknown-server-type",
        "Unknown server type",
        "A server instance's second level must be one of responses_api_models, resources_servers or "
        "responses_api_agents.",
        "example_simple_weather:\n  resources_servers:   # not resource_servers\n    example_simple_weather: {...}",
    ),
    Code(
        "GYM036",
        "unknown-implementation",
        "Unknown server implementation",
        "The third level names an implementation gym-compile does not ship (schemas/servers/<type>/"
        "<implementation>.schema.json), and its NeMo Gym source <root>/<type>/<implementation>/app.py "
        "(or the entrypoint the instance names) is in none of the NeMo Gym roots: --nemo-gym-root, "
        "NEMO_GYM_EXTRA_ROOTS, the NeMo Gym tree holding the config file, the working directory, an "
        "installed nemo-gym. The message lists every place looked, and close names.",
        "pip install nemo-gym   # or: gym-compile --nemo-gym-root ~/src/Gym CONFIG...",
    ),
    Code(
        "GYM037",
        "server-shape",
        "Malformed server instance",
        "A server instance must name exactly one server type and, under it, exactly one implementation.",
        "<instance>:\n  <server type>:\n    <implementation>:\n      ...fields...",
    ),
    Code(
        "GYM038",
        "unused-setting",
        "Top-level key is neither a setting nor used",
        "A top-level key of a config file is not a known setting and no ${...} refers to it. It is "
        "probably a typo of a setting or of a server instance.",
        "agent_name: simple_weather_simple_agent   # instead of agent_nmae",
        "warning",
    ),
    Code(
        "GYM040",
        "undefined-instance",
        "Reference to an undefined server instance",
        "A {type, name} reference (model_server, resources_server, ...) names an instance that no config "
        "defines. The hint lists the instances of the right type. In `gym-compile lint` without --set, "
        "an instance defined in none of the linted files is a warning.",
        "model_server: {type: responses_api_models, name: policy_model}",
    ),
    Code(
        "GYM041",
        "wrong-instance-type",
        "Reference to an instance of the wrong type",
        "A reference names an instance of another server type than the field needs, or its `type` does "
        "not match the instance it names.",
        "resources_server: {type: resources_servers, name: example_simple_weather}",
    ),
    Code(
        "GYM042",
        "agent-name",
        "agent_name missing or not an agent",
        "The job needs one agent to collect rollouts: agent_name is unset while several agents exist, or "
        "it names something that is not a responses_api_agents instance.",
        "+agent_name=simple_weather_simple_agent",
    ),
    Code(
        "GYM043",
        "port-clash",
        "Two servers on one port",
        "Two server instances are configured with the same host and port, so `gym-run serve` could not "
        "start both.",
        "port: null   # picks a free port",
    ),
    Code(
        "GYM045",
        "dataset-agent-pin",
        "A dataset pins an agent that cannot run it",
        "A dataset's `agent:` (NeMo Gym 0.7, benchmark sets) must name the agent that runs its rows: the "
        "agent declaring it, or an agent whose resources_server is the resources server declaring it. A "
        "dataset routed by `taskset` cannot pin an agent. NeMo Gym refuses the others when it prepares or "
        "runs the set.",
        "agent: aime24_math_with_judge_simple_agent",
    ),
    Code(
        "GYM050",
        "input-missing",
        "Input file missing",
        "The input JSONL (input_jsonl_fpath, a dataset's jsonl_fpath) does not exist or cannot be read, or a "
        "job is asked for and the agent has no example set to default to. Example sets must be committed; a "
        "train/validation/benchmark set is only needed when it is the job's input, and then the hint gives "
        "NeMo Gym's command that downloads or prepares it. Relative paths are found as NeMo Gym finds them, "
        "then next to the file that names them; every place looked is listed.",
        "+input_jsonl_fpath=data/example.jsonl",
    ),
    Code(
        "GYM051",
        "input-not-json",
        "Input line is not JSON",
        "Each line of an input JSONL must be one JSON object; this line does not parse.",
        '{"responses_create_params": {"input": "what\'s the weather in sf?"}}',
    ),
    Code(
        "GYM052",
        "input-row-invalid",
        "Input row does not match the row schema",
        "The row parses but is not a valid input row (schemas/input_row.schema.json); the JSON path "
        "names the offending field.",
        '{"responses_create_params": {"input": [{"role": "user", "content": "hi"}]}}',
    ),
    Code(
        "GYM053",
        "input-empty",
        "Input file has no rows",
        "The input JSONL is empty, so there is nothing to collect rollouts for.",
        "Add rows, or point input_jsonl_fpath at the right file.",
    ),
    Code(
        "GYM054",
        "dataset-rule",
        "Dataset breaks a NeMo Gym rule",
        "A dataset entry breaks a rule NeMo Gym's DatasetConfig enforces across fields: a train or "
        "validation set needs a license, and a set names its source once (source: or a deprecated "
        "*_identifier, not both). NeMo Gym refuses the whole config.",
        'license: "Apache 2.0"',
    ),
    Code(
        "GYM055",
        "dataset-deprecated",
        "Deprecated dataset field",
        "gitlab_identifier and huggingface_identifier are deprecated in NeMo Gym: one source: block "
        "(type: gitlab or huggingface) names where the set is downloaded from.",
        "source: {type: huggingface, repo_id: nvidia/Nemotron-RL-math, artifact_fpath: train.jsonl}",
        "warning",
    ),
    Code(
        "GYM060",
        "literal-secret",
        "Secret written in a config file",
        "A value that looks like a credential (sk-..., sk-proj-..., nvapi-..., Bearer ...) or a field "
        "marked secret (api_key) is written literally in a config file. Config files get committed and "
        "shared; secrets belong in env.yaml, which stays local (or in the environment in CI).",
        "# config:   api_key: ${policy_api_key}\n# env.yaml: policy_api_key: sk-...",
        "warning",
    ),
    Code(
        "GYM061",
        "secret-source",
        "Secret from the command line or from several places",
        "A secret field must come from exactly one place the plan can refer to: one ${...} reference (to "
        "env.yaml or the environment) or one literal. A value typed on the command line cannot be kept "
        "out of the plan.",
        "api_key: ${policy_api_key}   # and policy_api_key in env.yaml",
    ),
    Code(
        "GYM062",
        "plan-key",
        "The plan cannot be signed",
        "A plan that refers to secrets is signed with the compiling user's plan key ($GYM_PLAN_KEY, else "
        "~/.config/gym-compile/plan-key, made on first use); gym-run sends secrets only for plans "
        "signed with the same key. The key file could not be read or created, or GYM_PLAN_KEY is too "
        "short.",
        "export GYM_PLAN_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')",
    ),
    Code(
        "GYM070",
        "over-budget",
        "The estimate is over the budget",
        "The pre-run estimate (printed after the plan is written, and stored as job.estimate) may need more "
        "than a budget limit allows: its upper bound, which assumes every model call writes its maximum "
        "output, is over budget.max_usd or budget.max_tokens. A budget is a promise that the run cannot cost "
        "more, so no plan is written. gym-run also stops admitting rows when actual spend reaches the budget.",
        "budget: {max_usd: 5.0}\n# or fewer rollouts: +limit=100, or a bound on output:\n"
        "# +responses_create_params.max_output_tokens=512",
    ),
    Code(
        "GYM071",
        "budget-unchecked",
        "The budget cannot be checked before the run",
        "budget.max_usd is set but the agent's model has no price (the stand-in, or a model missing from "
        "schemas/prices.json), so the estimate has no cost to compare. The run's cost will be n/a and "
        "max_usd cannot stop it; max_tokens still can.",
        "prices:\n  models:\n    my-model: {input: 0.5, output: 1.5}   # USD per 1M tokens",
        "warning",
    ),
    Code(
        "GYM080",
        "bad-url",
        "An instance's url is not a server address",
        "`url:` on a server instance means the server already runs there and gym-run starts nothing for "
        "it: it must be http:// or https:// with a host and, optionally, a port; NeMo Gym reaches servers "
        "at host:port, so no path.",
        "url: http://127.0.0.1:8000",
    ),
    Code(
        "GYM081",
        "nemo-source-missing",
        "NeMo Gym's server code not found",
        "The instance must run NeMo Gym's own server code (gym-run does not build its implementation in, "
        "or nemo_gym.processes asks for it), and no NeMo Gym root has <type>/<implementation>/<entrypoint>. "
        "The hint lists the roots searched.",
        "pip install nemo-gym   # or: --nemo-gym-root path/to/Gym, or url: http://host:port",
    ),
    Code(
        "GYM082",
        "nemo-gym-setting",
        "Bad nemo_gym setting",
        "nemo_gym.python must name an executable Python (of an environment with nemo-gym installed); "
        "nemo_gym.processes must name server instances of the config.",
        "nemo_gym: {python: .venv-nemo/bin/python, processes: [my_resources_server]}",
    ),
    Code(
        "GYM083",
        "nemo-block-secret",
        "A block NeMo Gym's servers read holds a secret",
        "A server that runs NeMo Gym's code names a top-level block of the config (a sandbox "
        "provider, by `sandbox_provider:`) that it reads from NeMo Gym's global config. gym-run "
        "passes such blocks on, but never a secret: this one holds one, so it is left out and the "
        "server will not find it.",
        "my_sandbox_server:\n  resources_servers:\n    my_server:\n      url: http://127.0.0.1:8000   # run it yourself",
        "warning",
    ),
    Code(
        "GYM090",
        "schema-not-derived",
        "No schema could be derived from the server's source",
        "The implementation's NeMo Gym source was found, but gym-compile could not read a config class "
        'from it (no `X.run_webserver()` under `if __name__ == "__main__":`, no `config` annotation, '
        "or not valid Python). The source is read, never run. The instance's own fields are then not "
        "checked; references, ports and datasets still are.",
        "entrypoint: gsm8k_app.py   # name the module NeMo Gym runs, when it is not app.py",
        "warning",
    ),
    Code(
        "GYM091",
        "unknown-key-unsure",
        "Unknown key where the schema may not know every key",
        "A key that the schema derived from the server's source does not list, in an object whose set of "
        "keys gym-compile could not read completely (a base class from another package, or a pydantic "
        "'before' validator that may accept or rename keys). It is likely a typo, but it may be "
        "accepted at run time, so it is a warning, not an error.",
        "Check the spelling against the server's config class (the hint lists the known keys).",
        "warning",
    ),
    Code(
        "GYM092",
        "runtime-differs",
        "gym-run behaves differently from NeMo Gym for this value",
        "The value (written, or NeMo Gym's default) selects behaviour that gym-run's own implementation "
        "of this server does not have, or has differently (for example a judge option it does not "
        "implement, or a different default). NeMo Gym would run the same config differently; the "
        "message says what gym-run does instead.",
        "judge_prompt_template_fpath: prompts/my_judge.txt   # state the template, not the default",
        "warning",
    ),
]

CATALOGUE: dict[str, Code] = {c.code: c for c in _CODES}


def lookup(code: str) -> Code | None:
    """Accepts GYM020, gym20 or 20."""
    digits = code.strip().upper().removeprefix("GYM")
    return CATALOGUE.get("GYM" + digits.zfill(3)) if digits.isdigit() else None


def explain(code: Code) -> str:
    """The text `gym-compile explain-code` prints."""
    fix = "\n".join("    " + line for line in code.fix.splitlines())
    return (
        f"{code.code} ({code.name}, {code.severity}): {code.title}\n\n"
        f"{code.explanation}\n\nExample fix:\n{fix}\n"
    )


def markdown() -> str:
    """docs/diagnostics.md, generated so the page and the catalogue cannot drift apart."""
    out = [
        "# Diagnostic codes",
        "",
        "<!-- generated from gym_compile/diagnostics/codes.py: `gym-compile explain-code --markdown > docs/diagnostics.md` -->",
        "",
        "Every problem gym-compile reports carries a stable code. "
        "`gym-compile explain-code GYMxxx` prints the entry below in a terminal.",
        "",
        "The text format is `file:line:col: severity[code] $.json.path: message`, then the source line "
        "with a caret, then `hint:` lines (did you mean, which override fixes it) and `note:` lines "
        "(a second place involved, e.g. where an interpolated value is defined). Values set on the "
        "command line are located as `<command line>:+a.b=1`.",
        "",
        "| code | name | severity | title |",
        "|---|---|---|---|",
    ]
    out += [
        f"| [{c.code}](#{c.code.lower()}) | {c.name} | {c.severity} | {c.title} |" for c in _CODES
    ]
    for c in _CODES:
        out += [
            "",
            f"## {c.code}",
            "",
            f"**{c.title}** (`{c.name}`, {c.severity})",
            "",
            c.explanation,
            "",
            "Example fix:",
            "",
            "```",
            c.fix,
            "```",
        ]
    return "\n".join(out) + "\n"
