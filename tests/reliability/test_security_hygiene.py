"""Security hygiene (issue #12): no file read can run code, no parameter reaches a shell unquoted,
and paths with spaces work through the whole DAG."""
import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

from uvhmr.config import PROFILES, parse_params
from uvhmr.workflow import SPLITS, evaluate_targets, flags

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "bench").rglob("*.py")])


def _calls(tree: ast.AST):
    """(dotted name of the callee as written, call node) for every call, with `import x as y`
    aliases resolved (`th.load` -> `torch.load`, `from torch import load` -> `torch.load`)."""
    alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                parts.append(alias.get(f.id, f.id))
                yield ".".join(reversed(parts)), node


def _keyword(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else k.value
    return None


def _scan():
    for path in SOURCES:
        for name, call in _calls(ast.parse(path.read_text(), str(path))):
            yield f"{path.relative_to(REPO)}:{call.lineno}", name, call


def test_every_torch_load_reads_weights_only():
    loads = [(where, call) for where, name, call in _scan() if name in ("torch.load", "torch.serialization.load")]
    assert len(loads) >= 4                                    # the scan sees them (model files, checkpoints, bench)
    bad = [where for where, call in loads if _keyword(call, "weights_only") is not True]
    assert bad == [], f"torch.load without weights_only=True: {bad}"


def test_no_other_loader_can_run_code():
    """pickle only through a class that overrides find_class (AIST++ motions: arrays only); numpy
    never with allow_pickle=True; YAML only with safe_load; no eval, exec, os.system or shell=True."""
    bad = []
    for where, name, call in _scan():
        if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load", "yaml.load", "yaml.unsafe_load",
                    "eval", "exec", "os.system", "os.popen"):
            bad.append(f"{where} {name}")
        if name in ("numpy.load", "np.load") and _keyword(call, "allow_pickle") not in (None, False):
            bad.append(f"{where} {name}(allow_pickle=...)")
        if name.startswith("subprocess.") and _keyword(call, "shell") not in (None, False):
            bad.append(f"{where} {name}(shell=True)")
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any("Unpickler" in ast.unparse(b) for b in node.bases):
                if not any(isinstance(f, ast.FunctionDef) and f.name == "find_class" for f in node.body):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} without find_class")
    assert bad == []


def test_aist_motion_pickles_cannot_run_code(tmp_path):
    import os
    import pickle

    import numpy as np

    from uvhmr.data.mocap_loaders import MocapSourceError, read_aistpp

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {shlex.quote(str(tmp_path / 'pwned'))}",))

    f = tmp_path / "motion.pkl"
    f.write_bytes(pickle.dumps({"smpl_poses": Exploit(), "smpl_trans": np.zeros((2, 3)), "smpl_scaling": np.ones(1)}))
    with pytest.raises(MocapSourceError, match=r"motion\.pkl: not a readable AIST\+\+ motion pickle \(UnpicklingError: "
                                               r"refusing to load posix\.system"):
        read_aistpp(f)
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------------- shell commands

def _shell_commands(smk: Path) -> dict[str, str]:
    """rule name -> its shell command (the concatenated string literals after `shell:`)."""
    out, rule, lines = {}, None, smk.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"rule (\w+):", line)
        if m:
            rule = m.group(1)
        if line.strip() == "shell:":
            parts = []
            for nxt in lines[i + 1:]:
                s = nxt.strip()
                if not s.startswith(('"', "'")):
                    break
                parts.append(ast.literal_eval(s))
            out[rule] = "".join(parts)
    return out


# Placeholders allowed without :q, and why.
UNQUOTED = {
    "wildcards.split": "one of SPLITS (wildcard_constraints)",
    "wildcards.target": "an evaluate target: a validated variant name or a baseline (wildcard_constraints)",
    "params.inputs": "uvhmr.workflow.flags() shlex-quotes every path",
    "threads": "an integer",
}


def test_every_value_in_a_rule_shell_command_is_quoted():
    commands = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        commands.update(_shell_commands(smk))
    assert len(commands) >= 13                                # every rule of the DAG
    unquoted = []
    for rule, cmd in commands.items():
        for ph in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", cmd):
            if not ph.endswith(":q") and ph not in UNQUOTED:
                unquoted.append(f"{rule}: {{{ph}}}")
    assert unquoted == [], f"shell placeholders without :q (quote them, or pre-quote with shlex): {unquoted}"
    snakefile = (REPO / "Snakefile").read_text()
    assert 'split="|".join(SPLITS)' in snakefile and 'target="|".join(evaluate_targets(P))' in snakefile


def test_the_unquoted_words_need_no_quoting():
    """Every value those wildcards can take is a plain shell word, for every profile's parameters;
    variant names are validated to stay so (tests/reliability/test_bad_inputs.py)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for prof in PROFILES:
        params = parse_params(raw, prof)
        for word in (*SPLITS, *evaluate_targets(params)):
            assert shlex.quote(word) == word and re.fullmatch(r"[A-Za-z0-9_]+", word), word


def test_pre_quoted_flags_survive_spaces_and_quotes():
    paths = {"data": "results/my run/data/test", "model": "it's a \"model\".pt", "dmp_cache": "$(touch x); `y`"}
    words = shlex.split(flags(paths))
    assert words == ["--data", paths["data"], "--model", paths["model"], "--dmp-cache", paths["dmp_cache"]]


def test_dvc_commands_interpolate_only_validated_words():
    """dvc.yaml's commands are fixed relative paths; the only values interpolated into them come
    from params.yaml keys that validation restricts to plain words (profile, backend, variant
    names; `pipeline:` must name registered variants) or from dvc.yaml itself (the splits and baselines)."""
    text = (REPO / "dvc.yaml").read_text()
    stages = yaml.safe_load(text)["stages"]
    used = set()
    for stage in stages.values():
        cmd = (stage.get("do") or stage)["cmd"]
        used |= set(re.findall(r"\$\{([^}]+)\}", cmd))
    assert used <= {"profile", "body_model.backend", "key", "item", "item.flag", "item.input",
                    "pipeline.dmp", "pipeline.ik", "pipeline.uvi"}, used


def test_the_smoke_dag_ran_in_a_folder_with_a_space(smoke_run):
    """conftest.smoke_run runs the whole DAG in `<tmp>/smoke run/repo with space`: every rule
    reads and writes through absolute paths with spaces (checkpoints, the report's provenance)."""
    d, r, _ = smoke_run
    assert " " in str(d) and r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    log = (d / "results/smoke/logs/train_uvi-uvi14.log").read_text()
    assert f"checkpoints in {d.resolve()}/results/smoke/checkpoints/" in log
