"""A small NeMo Gym-shaped tree written by the tests: nemo_gym's base classes (hand-written to the
same shape as NeMo Gym's, with the same names) and servers whose app.py a test gives."""

from __future__ import annotations

import textwrap
from pathlib import Path

CONFIG_TYPES = """
from enum import Enum
from typing import List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class ModelServerRef(BaseModel):
    type: Literal["responses_api_models"]
    name: str


class ResourcesServerRef(BaseModel):
    type: Literal["resources_servers"]
    name: str


class Domain(str, Enum):
    MATH = "math"
    AGENT = "agent"
    OTHER = "other"


class DatasetConfig(BaseModel):
    name: str
    type: Literal["train", "validation", "example"]
    jsonl_fpath: str
    num_repeats: int = Field(default=1, ge=1)


class BaseServerConfig(BaseModel):
    host: str
    port: int
    num_workers: Optional[int] = None


class BaseRunServerConfig(BaseServerConfig):
    entrypoint: str
    domain: Optional[Domain] = None


class BaseRunServerInstanceConfig(BaseRunServerConfig):
    name: str


class BaseRunServerTypeConfig(BaseRunServerConfig):
    model_config = ConfigDict(extra="allow")
    host: Optional[str] = None
    port: Optional[int] = None
    datasets: Optional[List[Union[DatasetConfig]]] = None
"""

SERVER_UTILS = """
from pydantic import BaseModel

from nemo_gym.config_types import BaseRunServerInstanceConfig


class BaseServer(BaseModel):
    config: BaseRunServerInstanceConfig


class SimpleServer(BaseServer):
    pass
"""

BASE_RESOURCES = """
from nemo_gym.server_utils import BaseRunServerInstanceConfig, SimpleServer


class BaseResourcesServerConfig(BaseRunServerInstanceConfig):
    expose_tools_over_mcp: bool = False


class SimpleResourcesServer(SimpleServer):
    config: BaseResourcesServerConfig
"""


def nemo_tree(root: Path) -> Path:
    """nemo_gym/ with its base config classes under `root`; returns root."""
    pkg = root / "nemo_gym"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "config_types.py").write_text(CONFIG_TYPES, encoding="utf-8")
    (pkg / "server_utils.py").write_text(SERVER_UTILS, encoding="utf-8")
    (pkg / "base_resources_server.py").write_text(BASE_RESOURCES, encoding="utf-8")
    (root / "responses_api_models").mkdir(exist_ok=True)
    return root


def server(
    root: Path,
    impl: str,
    source: str,
    server_type: str = "resources_servers",
    main: str | None = None,
) -> Path:
    """<root>/<type>/<impl>/app.py with `source` (dedented) and, given `main`, NeMo Gym's
    `if __name__ == "__main__": <main>.run_webserver()`; returns the app.py path."""
    folder = root / server_type / impl
    folder.mkdir(parents=True, exist_ok=True)
    app = folder / "app.py"
    app.write_text(textwrap.dedent(source) + (run_main(main) if main else ""), encoding="utf-8")
    return app


def run_main(server_class: str) -> str:
    return f'\n\nif __name__ == "__main__":\n    {server_class}.run_webserver()\n'
