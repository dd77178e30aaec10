"""What interpolation says when a `${...}` fails: each diagnostic placed on the `${...}` being
evaluated (not only on its value), with what to do about it (define the name, set the ???, break
the cycle). interpolate.py decides that something failed; this module words it."""

from __future__ import annotations

from typing import Any

from gym_compile.diagnostics import Diagnostic, Location, Related, did_you_mean, json_path
from gym_compile.merge import Merged
from gym_compile.sourcemap import Path_, display_path, locate

MAX_CHAIN = 64  # links of ${a} -> ${b} -> ... followed before GYM009


class InterpProblems:
    """The diagnostics of one resolve() pass. `using` is the resolver's own map of path -> the
    ${...} it is evaluating there, read to narrow a location onto it."""

    def __init__(self, merged: Merged, using: dict[Path_, str]) -> None:
        self.m = merged
        self.using = using
        self.found: list[Diagnostic] = []
        self.chain_reported = False

    def report(
        self,
        code: str,
        message: str,
        path: Path_,
        hints: tuple[str, ...] = (),
        related: tuple[Related, ...] = (),
    ) -> None:
        self.found.append(
            Diagnostic(
                code, message, self.where(path), json_path(path), hints=hints, related=related
            )
        )

    def where(self, path: Path_) -> Location | None:
        """The value's location, narrowed to the ${...} being evaluated when it can be found."""
        loc = self.m.source.at(path)
        doc = self.m.document(loc.file) if loc else None
        needle = self.using.get(path)
        return locate(doc.text, loc, needle) if doc and needle else loc

    def undefined(self, key: str, target: tuple[str, ...], depth: int, path: Path_) -> None:
        parent: Any = self.m.data
        for part in target[:depth]:
            parent = parent[part] if isinstance(parent, dict) else parent[int(part)]
        siblings = (
            [str(k) for k, v in parent.items() if len(target) > 1 or not isinstance(v, dict)]
            if isinstance(parent, dict)
            else []
        )
        hints = list(did_you_mean(target[depth], siblings))
        if len(target) == 1:
            env = _shown(self.m.env_path) if self.m.env_path else None
            if self.m.env is None and env is not None:
                hints.append(
                    f"not defined: env.yaml was looked for at {env} and not found; create it "
                    f"with '{key}: ...' or pass --env PATH"
                )
            elif env is not None:
                hints.append(
                    f"not defined in {env} nor in any config file: add '{key}: ...' to {env}"
                )
            else:
                hints.append(f"define '{key}' in env.yaml or a config file, or pass +{key}=VALUE")
        missing = ".".join(target[: depth + 1])
        msg = f"undefined variable '${{{key}}}'" + (
            "" if missing == key else f" ({missing} does not exist)"
        )
        self.report("GYM020", msg, path, hints=tuple(hints))

    def missing(self, path: Path_) -> None:
        self.report(
            "GYM022",
            f"mandatory value {'.'.join(map(str, path))} is not set (???)",
            path,
            hints=(_set_hint(path),),
        )

    def refers_to_missing(self, key: str, found: Path_, path: Path_) -> None:
        at = self.m.source.at(found)
        self.report(
            "GYM022",
            f"'${{{key}}}' refers to {'.'.join(map(str, found))}, which is ??? (not set)",
            path,
            hints=(_set_hint(found),),
            related=(Related(at, "left as ??? here"),) if at else (),
        )

    def cycle(self, chain: list[Path_]) -> None:
        """`chain` runs from the value that was met again, through the others, back to it."""
        names = " -> ".join(".".join(map(str, p)) for p in chain)
        related = tuple(
            Related(loc, f"{'.'.join(map(str, p))} uses {self.using.get(p, '')}".rstrip())
            for p in chain[1:-1]
            if (loc := self.where(p)) is not None
        )
        self.report(
            "GYM021",
            f"interpolation cycle: {names}",
            chain[-1],
            related=related,
            hints=("one of these values must be a literal",),
        )

    def too_deep(self, stack: list[Path_], path: Path_) -> None:
        """Reported once, at the value that starts the chain (`stack`, reaching `path`)."""
        if self.chain_reported:
            return  # one long chain cut in pieces would repeat the same error per 64 links
        self.chain_reported = True

        def name(p: Path_) -> str:
            return ".".join(map(str, p))

        self.report(
            "GYM009",
            f"a chain of ${{...}} references is more than {MAX_CHAIN} links long "
            f"({name(stack[0])} -> {name(stack[1])} -> ... -> {name(path)})",
            stack[0],
            hints=("refer to the value at the end of the chain directly",),
        )


def _shown(path: Any) -> str:
    shown = display_path(path)
    return shown if shown.startswith(("/", ".")) else "./" + shown


def _set_hint(path: Path_) -> str:
    return f"set it on the command line: +{'.'.join(map(str, path))}=VALUE, or in env.yaml / a config file"
