"""Schemas derived from hand-written app.py files, one type form at a time (read, never run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from gym_compile.nemo.derive import derive
from tests.nemo_fixtures import nemo_tree, run_main, server

TYPES = """
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr

from nemo_gym.base_resources_server import BaseResourcesServerConfig, SimpleResourcesServer
from nemo_gym.config_types import ModelServerRef
from helpers import LOCAL_DEFAULT, Mode

MAX_TRIES = 3


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    depth: int = 2
    tags: List[str] = Field(default_factory=list)


class Config(BaseResourcesServerConfig):
    \"\"\"A server exercising every form.\"\"\"

    plain: str
    count: int = 3
    ratio: float = 0.5
    flag: bool = True
    maybe: Optional[int] = None
    either: Union[str, int] = "x"
    new_style: str | None = None
    names: list[str] = []
    table: Dict[str, float] = {}
    bare: dict = Field(default_factory=dict)
    mode: Literal["fast", "slow"] = "fast"
    color: Color = Color.RED
    inner: Inner = Field(default_factory=Inner)
    judge: ModelServerRef
    helper: Optional[ModelServerRef] = None
    tries: int = Field(default=MAX_TRIES, ge=1, description="Attempts.")
    positive: PositiveInt = 1
    bounded: Annotated[int, Field(ge=0, le=10)] = 5
    secret: SecretStr = "x"
    path: Path = Path("data/x.txt")
    local: Mode = LOCAL_DEFAULT
    anything: Any = None
    aliased: int = Field(default=0, alias="aliasName")
    limit: Optional[int] = Field(..., description="Required although Optional.")
    _private: int = 0
    KIND: ClassVar[str] = "x"
    model_config = ConfigDict(extra="forbid")


class Server(SimpleResourcesServer):
    config: Config
""" + run_main("Server")

HELPERS = """
from typing import Literal

Mode = Literal["a", "b"]
LOCAL_DEFAULT = "b"
"""


@pytest.fixture
def derived(tmp_path: Path):
    root = nemo_tree(tmp_path)
    app = server(root, "forms", TYPES)
    (app.parent / "helpers.py").write_text(HELPERS)
    return derive(app, "resources_servers", "forms", [root])


def test_every_type_form(derived):
    assert derived.error is None and derived.config_class == "Config"
    assert derived.complete, derived.notes
    props = derived.schema["properties"]
    assert props["plain"] == {"type": "string"}
    assert props["count"] == {"type": "integer", "default": 3}
    assert props["ratio"] == {"type": "number", "default": 0.5}
    assert props["flag"] == {"type": "boolean", "default": True}
    assert props["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert props["either"]["anyOf"] == [{"type": "string"}, {"type": "integer"}]
    assert props["new_style"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["names"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert props["table"]["additionalProperties"] == {"type": "number"}
    assert props["bare"] == {"type": "object", "default": {}}
    assert props["mode"] == {"enum": ["fast", "slow"], "default": "fast"}
    assert props["color"] == {"enum": ["red", "blue"], "default": "red"}
    assert props["inner"] == {"$ref": "#/$defs/Inner", "default": {"depth": 2, "tags": []}}
    assert derived.schema["$defs"]["Inner"]["additionalProperties"] is False
    assert props["judge"]["x-ref-type"] == "responses_api_models"
    assert props["helper"]["anyOf"][0]["x-ref-type"] == "responses_api_models"
    assert props["tries"] == {
        "type": "integer",
        "minimum": 1,
        "description": "Attempts.",
        "default": 3,
    }
    assert props["positive"]["exclusiveMinimum"] == 0
    assert (props["bounded"]["minimum"], props["bounded"]["maximum"]) == (0, 10)
    assert props["secret"]["writeOnly"] is True
    assert props["path"] == {"type": "string", "default": "data/x.txt"}
    assert props["local"] == {"enum": ["a", "b"], "default": "b"}  # a local module's alias
    assert props["anything"] == {"default": None}
    assert "aliasName" in props and "aliased" not in props
    assert "_private" not in props and "KIND" not in props
    required = derived.schema["required"]
    assert {"plain", "judge", "limit", "entrypoint", "domain"} <= set(required)
    assert not {"count", "host", "port", "name", "maybe"} & set(required)
    assert derived.schema["additionalProperties"] is False
    assert props["expose_tools_over_mcp"] == {"type": "boolean", "default": False}  # the base's
    assert props["domain"]["anyOf"][0] == {"enum": ["math", "agent", "other"]}
    assert props["datasets"]["anyOf"][0]["items"] == {"$ref": "#/$defs/DatasetConfig"}
    # NeMo Gym's metadata keys (a resources server's), with no default a config would be given
    assert props["verified"] == {"type": "boolean"}
    Draft202012Validator.check_schema(derived.schema)


def test_derived_schema_validates(derived):
    v = Draft202012Validator(derived.schema)
    ok = {
        "entrypoint": "app.py",
        "domain": "math",
        "plain": "p",
        "judge": {"type": "responses_api_models", "name": "m"},
        "limit": None,
    }
    assert not list(v.iter_errors(ok))
    assert list(v.iter_errors({**ok, "mode": "medium"}))
    assert list(v.iter_errors({**ok, "count": "three"}))
    assert list(v.iter_errors({**ok, "tries": 0}))
    assert list(v.iter_errors({**ok, "inner": {"depth": 1, "typo": 2}}))
    assert list(v.iter_errors({k: x for k, x in ok.items() if k != "plain"}))


def test_unreadable_base_and_before_validator_make_the_key_set_uncertain(tmp_path):
    root = nemo_tree(tmp_path)
    app = server(
        root,
        "odd",
        """
        from pydantic import BaseModel, model_validator
        from somewhere_else import ForeignBase
        from nemo_gym.base_resources_server import SimpleResourcesServer
        from openai.types import Reasoning

        class Nested(BaseModel):
            x: int = 1

            @model_validator(mode="before")
            @classmethod
            def rename(cls, data):
                return data

        class Config(ForeignBase):
            nested: Nested = Nested()
            reasoning: Reasoning = None

        class Server(SimpleResourcesServer):
            config: Config
        """,
        main="Server",
    )
    d = derive(app, "resources_servers", "odd", [root])
    assert d.schema is not None and not d.complete
    assert "somewhere_else" in d.schema["x-incomplete"][0]
    assert d.schema["$defs"]["Nested"]["x-incomplete"]
    assert d.schema["properties"]["reasoning"] == {"default": None}  # accepts anything
    assert any("openai" in n for n in d.notes)


def test_server_class_found_without_a_main_block_and_failures_say_why(tmp_path):
    root = nemo_tree(tmp_path)
    app = server(
        root,
        "nomain",
        """
        from nemo_gym.base_resources_server import BaseResourcesServerConfig, SimpleResourcesServer

        class C(BaseResourcesServerConfig):
            a: int = 1

        class S(SimpleResourcesServer):
            config: C
        """,
    )
    assert derive(app, "resources_servers", "nomain", [root]).config_class == "C"
    broken = server(root, "broken", "def f(:\n")
    assert "not valid Python" in derive(broken, "resources_servers", "broken", [root]).error
    empty = server(root, "empty", "X = 1\n")
    assert "no server class" in derive(empty, "resources_servers", "empty", [root]).error


def test_base_config_from_another_server_of_the_tree(tmp_path):
    root = nemo_tree(tmp_path)
    server(
        root,
        "parent",
        """
        from nemo_gym.base_resources_server import BaseResourcesServerConfig

        class ParentConfig(BaseResourcesServerConfig):
            shared: int = 7
        """,
    )
    (root / "resources_servers" / "__init__.py").write_text("")
    app = server(
        root,
        "child",
        """
        from resources_servers.parent.app import ParentConfig
        from nemo_gym.base_resources_server import SimpleResourcesServer

        class ChildConfig(ParentConfig):
            own: str = "o"

        class S(SimpleResourcesServer):
            config: ChildConfig
        """,
        main="S",
    )
    d = derive(app, "resources_servers", "child", [root])
    assert d.complete and d.schema["properties"]["shared"]["default"] == 7
    assert str(root / "resources_servers" / "parent" / "app.py") in d.files
