"""ComfyUI nodes: learned solvers as ``SAMPLER`` and ``SIGMAS``, and learning inside ComfyUI.

Importable without ComfyUI (its modules are imported inside the node functions). ComfyUI
finds the nodes through ``NODE_CLASS_MAPPINGS``; ``s4s comfyui install COMFYUI_DIR`` writes a
small folder into ``custom_nodes`` that imports them from this module.

The contract, from ComfyUI's ``comfy/samplers.py`` (``KSAMPLER``, ``CFGGuider``),
``comfy/model_sampling.py`` and ``comfy_extras/nodes_custom_sampler.py``:

- a ``SAMPLER`` is ``comfy.samplers.KSAMPLER(sampler_function, extra_options)``; ComfyUI calls
  ``sampler_function(model, x, sigmas, extra_args=..., callback=..., disable=..., **extra_options)``
  with ``x`` already noised at ``sigmas[0]`` and ``model(x, sigma[B], **extra_args) -> x0``;
  ``model.inner_model.inner_model.model_sampling`` is the model's sampling object (what
  ``KSAMPLER`` itself reads for ``noise_scaling``);
- models whose ``model_sampling`` derives from ``CONST`` (SD3, Flux, Wan, ...) are in the flow
  frame, ``sigma`` in ``[0, 1]``; EPS, V-prediction and EDM models are in the VE frame;
- discrete models' ``model_sampling.timestep(sigma)`` rounds to the nearest training step.

Solver files live in :func:`solver_dir`: ``$S4S_COMFYUI_SOLVERS``, else ComfyUI's
``models/s4s`` folder, else ``~/.cache/s4s/comfyui``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..io import save_solver
from ..k_diffusion import from_host, host_denoiser, host_sigmas, sample_s4s
from ..learn.config import NUM_SAMPLES
from ..learn.guidance import solver_at
from ..solvers.table import Solver

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "S4SSampler", "S4SSigmas", "S4SLearn",
           "solver_dir", "solver_files", "model_frame", "host_timesteps", "install"]

logger = logging.getLogger(__name__)

CATEGORY = "sampling/s4s"
NO_FILES = "(no solver files)"
FLOW_T_MAX = 0.999
"""Where learning starts on a flow model whose sampling reaches t = 1 (s4s's flow default)."""


def solver_dir() -> Path:
    """The folder the nodes list solver files from and S4S Learn writes to."""
    env = os.environ.get("S4S_COMFYUI_SOLVERS")
    if env:
        return Path(env)
    folder_paths = sys.modules.get("folder_paths")  # ComfyUI's, when running inside it
    if folder_paths is not None and hasattr(folder_paths, "models_dir"):
        return Path(folder_paths.models_dir) / "s4s"
    return Path.home() / ".cache" / "s4s" / "comfyui"


def solver_files() -> list[str]:
    """The ``.json`` files in :func:`solver_dir` (one-scale and guidance-range solvers)."""
    folder = solver_dir()
    files = sorted(p.name for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []
    return files or [NO_FILES]


def _solver(name: str, cfg: float) -> Solver:
    if name == NO_FILES or not name:
        raise ValueError(f"no solver file chosen: learn one with the S4S Learn node, or put solver files in {solver_dir()}")
    path = solver_dir() / name
    if Path(name).name != name or not path.is_file():
        raise FileNotFoundError(f"no solver file {name!r} in {solver_dir()}")
    from ..learn.guidance import is_guidance_solver_file

    ranged = is_guidance_solver_file(path)
    return solver_at(path, float(cfg) if ranged and cfg > 0 else None)  # cfg 0: not given


def _model_sampling(model: Any) -> Any:
    """A ComfyUI ``MODEL``'s (``ModelPatcher``'s) sampling object."""
    if hasattr(model, "get_model_object"):
        return model.get_model_object("model_sampling")
    inner = getattr(model, "model", model)
    if hasattr(inner, "model_sampling"):
        return inner.model_sampling
    raise TypeError(f"expected a ComfyUI MODEL with a model_sampling, got {type(model).__name__}")


def model_frame(model_sampling: Any) -> str:
    """``"flow"`` for a ComfyUI sampling object deriving from ``CONST``, ``"ve"`` for one deriving
    from ``EPS`` (EPS, V-prediction, EDM); others are refused, naming the class."""
    names = {c.__name__ for c in type(model_sampling).__mro__}
    if "CONST" in names:
        return "flow"
    if "EPS" in names:
        return "ve"
    raise ValueError(f"s4s does not know ComfyUI's {type(model_sampling).__name__} models (neither EPS/V/EDM nor CONST)")


def host_timesteps(model_sampling: Any) -> str | None:
    """``"integer"`` if ``model_sampling.timestep`` rounds to training steps (ComfyUI's discrete
    models), ``"continuous"`` if not, ``None`` if it cannot be asked."""
    timestep = getattr(model_sampling, "timestep", None)
    if not callable(timestep):
        return None
    lo, hi = float(model_sampling.sigma_min), float(model_sampling.sigma_max)
    probes = torch.tensor([lo + 0.37 * (hi - lo), math.sqrt(lo * hi) * 1.013])
    with torch.no_grad():
        t = torch.as_tensor(timestep(probes)).double()
    return "integer" if bool((t == t.round()).all()) else "continuous"


def _sampling_of_host(model: Any) -> Any:
    """The sampling object behind the ``model`` ComfyUI passes to a sampler function
    (``KSamplerX0Inpaint`` -> guider -> base model), or ``None``."""
    wrap = getattr(model, "inner_model", None)
    return getattr(getattr(wrap, "inner_model", None), "model_sampling", None)


def sample_in_comfyui(model: Callable[..., Tensor], x: Tensor, sigmas: Tensor, extra_args: dict[str, Any] | None = None,
                      callback: Callable[[dict[str, Any]], None] | None = None, disable: bool | None = None,
                      solver: Solver | None = None) -> Tensor:
    """The S4S Sampler's sampler function: :func:`s4s.k_diffusion.sample_s4s` in the frame of
    the host's model (and warning when it rounds timesteps unlike the solver's model)."""
    sampling = _sampling_of_host(model)
    frame = model_frame(sampling) if sampling is not None else None
    return sample_s4s(model, x, sigmas, extra_args, callback, disable, solver=solver, frame=frame,
                      timesteps=host_timesteps(sampling) if sampling is not None else None)


_CFG = ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                  "tooltip": "for a solver learned for a range of guidance scales: the scale to run it at "
                             "(the guider's cfg); ignored for a one-scale solver"})


def _solver_choice() -> tuple[list[str], dict[str, str]]:
    return solver_files(), {"tooltip": f"a solver file in {solver_dir()}"}


class S4SSampler:
    """A learned solver as a ``SAMPLER`` (for SamplerCustom / SamplerCustomAdvanced)."""

    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"
    CATEGORY = CATEGORY
    DESCRIPTION = "Samples with a learned s4s solver; give it the solver's step count (or S4S Sigmas)."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"solver": _solver_choice()}, "optional": {"cfg": _CFG}}

    def get_sampler(self, solver: str, cfg: float = 0.0) -> tuple[Any]:
        import comfy.samplers

        return (comfy.samplers.KSAMPLER(sample_in_comfyui, extra_options={"solver": _solver(solver, cfg)}),)


class S4SSigmas:
    """A learned solver's grid as ``SIGMAS``, in the model's own units (VE sigma, or flow t)."""

    RETURN_TYPES = ("SIGMAS",)
    FUNCTION = "get_sigmas"
    CATEGORY = CATEGORY
    DESCRIPTION = "The learned time steps of an s4s solver, for the model it was learned for."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"model": ("MODEL",), "solver": _solver_choice()}, "optional": {"cfg": _CFG}}

    def get_sigmas(self, model: Any, solver: str, cfg: float = 0.0) -> tuple[Tensor]:
        return (sigmas_for(_model_sampling(model), _solver(solver, cfg)),)


def sigmas_for(model_sampling: Any, solver: Solver) -> Tensor:
    """``solver``'s grid in the units of a model with ``model_sampling``, refused (naming both)
    when the solver starts above the model's noise range."""
    frame = model_frame(model_sampling)
    grid = host_sigmas(solver, frame)
    top = float(model_sampling.sigma_max)
    if float(grid[0]) > top * (1 + 1e-3):
        raise ValueError(f"the solver starts at sigma {float(grid[0]):.6g}, above this model's sigma_max {top:.6g}: "
                         "it was learned for another model")
    return grid


@dataclass
class _LearnJob:
    """What S4S Learn's sampler function needs, and where it leaves the solver."""

    nfe: int
    method: str
    num_samples: int
    seed: int
    host: dict[str, Any]
    modules: list[nn.Module] = field(default_factory=list)
    progress: Callable[[int, int], None] | None = None
    solver: Solver | None = None


def _normal_tensors(modules: list[nn.Module]) -> int:
    """Replace inference-mode parameters and buffers (ComfyUI loads weights under
    ``torch.inference_mode``, and autograd may not save those) by normal copies; returns how many."""
    count = 0
    for module in modules:
        for sub in module.modules():
            for store in (sub._parameters, sub._buffers):
                for name, t in list(store.items()):
                    if t is not None and t.is_inference():
                        copy = t.clone()
                        store[name] = nn.Parameter(copy, requires_grad=False) if isinstance(t, nn.Parameter) else copy
                        count += 1
    return count


def learn_in_host(model: Callable[..., Tensor], x: Tensor, sigmas: Tensor, extra_args: dict[str, Any] | None = None,
                  callback: Any = None, disable: bool | None = None, job: _LearnJob | None = None) -> Tensor:
    """S4S Learn's sampler function: learns ``job``'s solver on the host's ``model`` (the guided
    model ComfyUI passes a sampler, conditions and cfg included), samples of ``x``'s shape;
    ``sigmas`` (host units) give the noise range. Returns ``x`` unchanged."""
    from ..learn import LearnConfig, learn

    if job is None:
        raise ValueError("learn_in_host needs job=")
    sampling = _sampling_of_host(model)
    frame = job.host.get("frame") or (model_frame(sampling) if sampling is not None else "ve")
    top, bottom = float(sigmas[0]), float(sigmas[-1])
    if frame == "flow":
        top = min(top, FLOW_T_MAX)
    lo, hi = (float(from_host(torch.tensor(v, dtype=torch.float64), frame)) for v in (bottom, top))
    denoiser = host_denoiser(model, frame, lo, hi, extra_args, name=job.host.get("name", "comfyui model"))
    timesteps = host_timesteps(sampling) if sampling is not None else None
    if timesteps is not None:
        denoiser.timesteps = timesteps  # type: ignore[attr-defined]
    denoiser.host = {**job.host, "frame": frame, "latent_shape": list(x.shape[1:])}  # type: ignore[attr-defined]
    denoiser.sample_shape = tuple(x.shape[1:])  # type: ignore[attr-defined]
    with torch.inference_mode(False), torch.enable_grad():
        replaced = _normal_tensors(job.modules)
        if replaced:
            logger.info("S4S Learn: %d inference-mode weights copied so that autograd can use them", replaced)
        config = LearnConfig(shape=tuple(x.shape[1:]), device=x.device, parallel=False)  # one caller of ComfyUI's model

        def report(event: Any) -> None:
            if job.progress is not None:
                job.progress(event.iteration, event.total)

        job.solver = learn(denoiser, job.nfe, job.method, job.num_samples, job.seed, config=config, callback=report)
    return x


def _free_name(folder: Path, stem: str) -> Path:
    path, k = folder / f"{stem}.json", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}-{k}.json"
    return path


class S4SLearn:
    """Learns a solver for a ``MODEL`` with its conditioning and cfg inside ComfyUI, and writes
    the solver file the S4S Sampler and S4S Sigmas nodes list."""

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("solver",)
    FUNCTION = "learn"
    CATEGORY = CATEGORY
    OUTPUT_NODE = True
    DESCRIPTION = "Learns an s4s solver (minutes; counted model evaluations) for this model, prompt, cfg and size."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        from ..learn.learner import METHODS

        return {"required": {
            "model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
            "latent_image": ("LATENT", {"tooltip": "its size is the size the solver is learned for"}),
            "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
            "nfe": ("INT", {"default": 5, "min": 1, "max": 50, "tooltip": "model evaluations (steps) of the solver"}),
            "method": (list(METHODS), {"default": "s4s_alt"}),
            "num_samples": ("INT", {"default": NUM_SAMPLES, "min": 8, "max": 65536, "tooltip": "teacher pairs"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
            "filename": ("STRING", {"default": "s4s"}),
        }}

    def learn(self, model: Any, positive: Any, negative: Any, latent_image: dict[str, Tensor], cfg: float, nfe: int,
              method: str, num_samples: int, seed: int, filename: str) -> tuple[str]:
        import comfy.samplers
        import comfy.utils

        stem = Path(str(filename)).name.strip() or "s4s"
        sampling = _model_sampling(model)
        frame = model_frame(sampling)
        latent = latent_image["samples"]
        pbar = comfy.utils.ProgressBar(1)
        job = _LearnJob(nfe=int(nfe), method=str(method), num_samples=int(num_samples), seed=int(seed),
                        host={"host": "comfyui", "frame": frame, "cfg": float(cfg),
                              "name": f"comfyui:{type(getattr(model, 'model', model)).__name__}"},
                        modules=[m for m in [getattr(model, "model", None)] if isinstance(m, nn.Module)],
                        progress=lambda done, total: pbar.update_absolute(done, total))
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        sigmas = torch.tensor([float(sampling.sigma_max), float(sampling.sigma_min)])
        sampler = comfy.samplers.KSAMPLER(learn_in_host, extra_options={"job": job})
        guider.sample(torch.zeros_like(latent), latent, sampler, sigmas, disable_pbar=True, seed=int(seed))
        if job.solver is None:
            raise RuntimeError("ComfyUI did not call the learner (S4S Learn's sampler function)")
        folder = solver_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = save_solver(job.solver, _free_name(folder, f"{stem}-{method}-nfe{int(nfe)}"), overwrite=False)
        logger.info("S4S Learn wrote %s (%s units)", path, job.solver.meta["cost"]["units"])
        return (path.name,)


NODE_CLASS_MAPPINGS = {"S4SSampler": S4SSampler, "S4SSigmas": S4SSigmas, "S4SLearn": S4SLearn}
NODE_DISPLAY_NAME_MAPPINGS = {"S4SSampler": "S4S Sampler", "S4SSigmas": "S4S Sigmas", "S4SLearn": "S4S Learn"}

PACKAGE = "comfyui-s4s"
"""The folder :func:`install` writes into ``custom_nodes``."""

_LOADER = '''"""s4s nodes for ComfyUI (written by `s4s comfyui install`); the code lives in the s4s package."""
from s4s.integrations.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
'''


def install(comfyui: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``custom_nodes/comfyui-s4s/__init__.py`` under a ComfyUI folder (or into a
    ``custom_nodes`` folder given directly); s4s must be installed in ComfyUI's Python.
    Returns the file written; another file there is kept unless ``force``."""
    root = Path(comfyui)
    nodes = root if root.name == "custom_nodes" else root / "custom_nodes"
    if not nodes.is_dir():
        raise FileNotFoundError(f"{root} is not a ComfyUI folder (no custom_nodes folder in it)")
    target = nodes / PACKAGE / "__init__.py"
    if target.exists() and target.read_text() != _LOADER and not force:
        raise FileExistsError(f"{target} exists and is not s4s's loader; pass --force to replace it")
    target.parent.mkdir(exist_ok=True)
    target.write_text(_LOADER)
    return target
