"""Finding NeMo Gym roots and server sources in real directory trees."""

from __future__ import annotations

import os
from pathlib import Path

from gym_compile.nemo.roots import (
    EXTRA_ROOTS_ENV,
    entrypoint_module,
    env_extra_roots,
    find_roots,
    find_roots_explained,
    find_server_source,
    tree_root_of,
)


def _server(root: Path, stype: str, impl: str, entry: str = "app.py") -> Path:
    folder = root / stype / impl
    (folder / "configs").mkdir(parents=True)
    (folder / entry).write_text("class C: pass\n")
    config = folder / "configs" / f"{impl}.yaml"
    config.write_text(f"x:\n  {stype}:\n    {impl}: {{entrypoint: {entry}}}\n")
    return config


def test_order_extra_env_tree_cwd(tmp_path):
    checkout = tmp_path / "Gym"
    config = _server(checkout, "resources_servers", "weather")
    (checkout / "responses_api_models").mkdir()
    extra, env_a, env_b, cwd = (tmp_path / n for n in ("extra", "ea", "eb", "cwd"))
    for d in (extra, env_a, env_b, cwd):
        d.mkdir()
    roots = find_roots(
        [config],
        [extra],
        environ={EXTRA_ROOTS_ENV: f"{env_a}{os.pathsep}{env_b}"},
        cwd=cwd,
    )
    assert roots[:5] == [extra, env_a, env_b, checkout, cwd.resolve()]


def test_env_roots_split_like_nemo_gym_and_on_commas():
    value = f"/a{os.pathsep}/b,/c{os.pathsep}{os.pathsep} "
    assert env_extra_roots({EXTRA_ROOTS_ENV: value}) == ["/a", "/b", "/c"]
    assert env_extra_roots({}) == []


def test_duplicates_keep_the_first_reason(tmp_path):
    config = _server(tmp_path, "resources_servers", "w")
    (tmp_path / "responses_api_agents").mkdir()
    explained = find_roots_explained([config], [tmp_path], environ={}, cwd=tmp_path)
    assert [r.origin for r in explained if r.path == tmp_path] == ["--nemo-gym-root"]
    assert sum(r.path.resolve() == tmp_path.resolve() for r in explained) == 1


def test_tree_of_a_plugin_folder_with_one_server_type(tmp_path):
    config = _server(tmp_path / "plugin", "responses_api_agents", "my_agent")
    assert tree_root_of(config) == tmp_path / "plugin"
    assert tree_root_of(tmp_path / "loose.yaml") is None


def test_tree_recognised_by_nemo_gym_package(tmp_path):
    (tmp_path / "nemo_gym").mkdir()
    (tmp_path / "nemo_gym" / "__init__.py").write_text("")
    (tmp_path / "mine" / "deep").mkdir(parents=True)
    assert tree_root_of(tmp_path / "mine" / "deep" / "c.yaml") == tmp_path


def test_server_source_first_root_wins_and_stays_inside(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _server(b, "resources_servers", "weather")
    _server(a, "resources_servers", "weather")
    assert find_server_source([a, b], "resources_servers", "weather") == (
        a / "resources_servers" / "weather" / "app.py"
    )
    _server(b, "responses_api_agents", "only_b", entry="other.py")
    assert find_server_source([a, b], "responses_api_agents", "only_b", "other.py") is not None
    assert find_server_source([a, b], "responses_api_agents", "only_b") is None  # no app.py
    assert find_server_source([a, b], "resources_servers", "../weather") is None
    assert find_server_source([a, b], "not_a_type", "weather") is None
    assert find_server_source([a], "resources_servers", "weather", "../../../b/x.py") is None


def test_entrypoint_module():
    assert entrypoint_module("app.py") == "app.py"
    assert entrypoint_module("gsm8k_app.py") == "gsm8k_app.py"
    for odd in (None, "", "???", ["sleep"], "/abs/app.py", 3):
        assert entrypoint_module(odd) == "app.py"


def test_installed_distribution_absent_here():
    # gym-compile's own venv has no nemo-gym: the last root is the working directory.
    roots = find_roots_explained([], [], environ={}, cwd=Path.cwd())
    assert roots[-1].origin == "current directory"
