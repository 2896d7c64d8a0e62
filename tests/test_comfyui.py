"""ComfyUI nodes: the loader fields ComfyUI reads, the S4S Sampler / Sigmas / Learn nodes driven
through ComfyUI's sampling calls (replayed in ``comfy_host``) on the zoo's networks behind
k-diffusion's real ``CompVisDenoiser`` / ``CompVisVDenoiser``, quantised and not, and a flow
model; the same in a real ComfyUI wherever it is importable."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

import s4s
from s4s import zoo
from s4s.integrations import comfyui
from s4s.integrations.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, S4SLearn, S4SSampler, S4SSigmas
from s4s.k_diffusion import from_host, sample_s4s, to_host

import comfy_host

pytest.importorskip("diffusers")
pytest.importorskip("torchsde")  # k-diffusion's sampling module imports it
if importlib.util.find_spec("k_diffusion") is None:
    pytest.skip("k-diffusion is not installed (make install installs it)", allow_module_level=True)

REAL_COMFYUI = importlib.util.find_spec("comfy") is not None


@pytest.fixture
def solvers(tmp_path, monkeypatch):
    folder = tmp_path / "solvers"
    folder.mkdir()
    monkeypatch.setenv("S4S_COMFYUI_SOLVERS", str(folder))
    return folder


def run_sampler(patcher, sampler, sigmas, noise, cfg=1.0):
    """What SamplerCustomAdvanced does with a SAMPLER and SIGMAS: CFGGuider.sample on an empty latent."""
    import comfy.samplers

    guider = comfy.samplers.CFGGuider(patcher)
    guider.set_conds(None, None)
    guider.set_cfg(cfg)
    with torch.inference_mode():  # ComfyUI runs nodes under inference mode
        return guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, seed=0)


def s4s_digits_ddpm(patcher, round_time):
    """s4s's own adapter of the host's network (not the host's wrapper): a VP eps or v model,
    timesteps rounded or not."""
    compvis = patcher.model.net
    return s4s.vp_denoiser(compvis.apply_model, s4s.DiscreteVP(compvis.alphas_cumprod.double()), compvis.prediction,
                           round_time=round_time)


def test_the_module_imports_without_comfyui_and_declares_what_comfyui_reads():
    code = "import sys, s4s.integrations.comfyui as c; assert 'comfy' not in sys.modules; print(sorted(c.NODE_CLASS_MAPPINGS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['S4SLearn', 'S4SSampler', 'S4SSigmas']"
    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    for cls in NODE_CLASS_MAPPINGS.values():
        inputs = cls.INPUT_TYPES()
        assert set(inputs) <= {"required", "optional", "hidden"} and "required" in inputs
        for spec in [s for group in inputs.values() for s in group.values()]:
            assert isinstance(spec, tuple) and (isinstance(spec[0], (str, list)))
            assert len(spec) == 1 or isinstance(spec[1], dict)
        assert isinstance(cls.RETURN_TYPES, tuple) and callable(getattr(cls, cls.FUNCTION))
        assert isinstance(cls.CATEGORY, str) and cls.CATEGORY.startswith("sampling")
    assert S4SSampler.RETURN_TYPES == ("SAMPLER",) and S4SSigmas.RETURN_TYPES == ("SIGMAS",)
    assert S4SLearn.OUTPUT_NODE is True


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """S4S Learn inside (replayed) ComfyUI on digits-ddpm behind a quantising CompVisDenoiser,
    the weights loaded and the node run under inference mode, as ComfyUI does."""
    folder = tmp_path_factory.mktemp("solvers")
    saved = os.environ.get("S4S_COMFYUI_SOLVERS")
    os.environ["S4S_COMFYUI_SOLVERS"] = str(folder)
    comfy_host.ProgressBar.seen.clear()
    try:
        with comfy_host.installed(), torch.inference_mode():
            patcher, _ = comfy_host.digits_ddpm_patcher("eps", quantize=True)
            name, = S4SLearn().learn(patcher, None, None, {"samples": torch.zeros(1, 1, 8, 8)}, cfg=1.0, nfe=4,
                                     method="s4s_alt", num_samples=32, seed=0, filename="digits")
    finally:
        if saved is None:
            os.environ.pop("S4S_COMFYUI_SOLVERS")
        else:
            os.environ["S4S_COMFYUI_SOLVERS"] = saved
    return folder, name, list(comfy_host.ProgressBar.seen)


def test_learn_node_writes_a_solver_learned_with_the_hosts_rounding(learned):
    folder, name, progress = learned
    assert name == "digits-s4s_alt-nfe4.json"
    solver = s4s.load_solver(folder / name)
    model = solver.meta["model"]
    assert model["timesteps"] == "integer" and model["host"]["host"] == "comfyui" and model["host"]["frame"] == "ve"
    assert model["host"]["latent_shape"] == [1, 8, 8] and model["host"]["cfg"] == 1.0
    assert solver.nfe == 4 and solver.meta["metrics"]["val_best"] <= solver.meta["metrics"]["val_start"]
    assert solver.meta["cost"]["units"] > 0
    assert progress and progress[-1][0] == progress[-1][1] > 0  # ComfyUI's progress bar reached its end


def test_sampler_node_runs_the_learned_solver_like_solver_sample(learned, monkeypatch):
    folder, name, _ = learned
    monkeypatch.setenv("S4S_COMFYUI_SOLVERS", str(folder))
    solver = s4s.load_solver(folder / name)
    noise = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    with comfy_host.installed():
        patcher, _ = comfy_host.digits_ddpm_patcher("eps", quantize=True)
        sampler, = S4SSampler().get_sampler(name)
        sigmas, = S4SSigmas().get_sigmas(patcher, name)
        out = run_sampler(patcher, sampler, sigmas, noise)
    start = float(solver.sigmas[0])  # ComfyUI starts at sigma_max with sqrt(1 + sigma^2) noise
    with torch.no_grad():
        same = solver.sample(s4s_digits_ddpm(patcher, round_time=True), noise * (1 + start ** 2) ** 0.5 / start)
        unrounded = solver.sample(s4s_digits_ddpm(patcher, round_time=False), noise * (1 + start ** 2) ** 0.5 / start)
    assert (out - same).abs().max() <= 1e-4
    assert (out - unrounded).abs().max() > 1e-3  # the host's rounding matters, and is reproduced


def test_a_solver_on_a_host_that_rounds_otherwise_warns_naming_both(learned, monkeypatch):
    folder, name, _ = learned
    monkeypatch.setenv("S4S_COMFYUI_SOLVERS", str(folder))
    noise = torch.randn(2, 1, 8, 8)
    with comfy_host.installed():
        patcher, wrapper = comfy_host.digits_ddpm_patcher("eps", quantize=False)
        sampler, = S4SSampler().get_sampler(name)
        sigmas, = S4SSigmas().get_sigmas(patcher, name)
        with pytest.warns(UserWarning, match="learned on a model fed integer timesteps, but this host feeds continuous"):
            run_sampler(patcher, sampler, sigmas, noise)
    with pytest.warns(UserWarning, match="fed integer timesteps, but this host feeds continuous"):  # k-diffusion's own flag
        sample_s4s(wrapper, noise * sigmas[0], sigmas, solver=s4s.load_solver(folder / name))


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("quantize", [False, True])
def test_sampler_node_through_k_diffusions_wrappers(solvers, prediction, quantize):
    with comfy_host.installed():
        patcher, _ = comfy_host.digits_ddpm_patcher(prediction, quantize=quantize)
        reference = s4s_digits_ddpm(patcher, round_time=quantize)
        solver = s4s.make_solver("dpmpp_2m", 5, "karras", reference)
        solver.save(solvers / "hand.json")
        sampler, = S4SSampler().get_sampler("hand.json")
        sigmas, = S4SSigmas().get_sigmas(patcher, "hand.json")
        noise = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        out = run_sampler(patcher, sampler, sigmas, noise)
    start = float(solver.sigmas[0])
    with torch.no_grad():
        expected = solver.sample(reference, noise * (1 + start ** 2) ** 0.5 / start)
    assert (out - expected).abs().max() <= 1e-4


def test_sigmas_round_trip_for_a_discrete_and_a_flow_model(solvers):
    with comfy_host.installed():
        discrete, _ = comfy_host.digits_ddpm_patcher("eps", quantize=True)
        flow = comfy_host.digits_flow_patcher()
        cases = [(discrete, zoo.load("digits-ddpm"), "ve"), (flow, zoo.load("digits-flow"), "flow")]
        for patcher, model, frame in cases:
            solver = s4s.make_solver("dpmpp_2m", 5, "time_uniform", model)
            solver.save(solvers / f"{frame}.json")
            sigmas, = S4SSigmas().get_sigmas(patcher, f"{frame}.json")
            assert sigmas.dtype == torch.float32 and sigmas.shape == (6,) and float(sigmas[-1]) == 0.0
            assert torch.equal(sigmas[:-1], to_host(solver.sigmas[:-1], frame).float())
            # float32, as ComfyUI's SIGMAS are: back to s4s's levels to 1e-4 (flow t near 1 amplifies the rounding)
            assert torch.allclose(from_host(sigmas[:-1].double(), frame), solver.sigmas[:-1], rtol=1e-4)
            if frame == "flow":
                assert float(sigmas[0]) < 1 and torch.all(sigmas[:-1] > 0)
                sampler, = S4SSampler().get_sampler("flow.json")
                noise = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
                out = run_sampler(patcher, sampler, sigmas, noise)
                with torch.no_grad():  # the host's x = t0 noise is s4s's state sigma0 noise
                    expected = solver.sample(model, noise)
                assert (out - expected).abs().max() <= 1e-4


def test_learn_node_on_a_flow_model_and_its_solver_through_the_sampler_node(solvers):
    with comfy_host.installed():
        patcher = comfy_host.digits_flow_patcher()
        with torch.inference_mode():
            name, = S4SLearn().learn(patcher, None, None, {"samples": torch.zeros(1, 1, 8, 8)}, cfg=1.0, nfe=3,
                                     method="s4s", num_samples=16, seed=0, filename="flow")
        solver = s4s.load_solver(solvers / name)
        assert solver.meta["model"]["host"]["frame"] == "flow" and solver.meta["model"]["timesteps"] == "continuous"
        assert abs(float(solver.sigmas[0]) - 999.0) < 1e-6  # t = 0.999, where s4s's flow models start
        sampler, = S4SSampler().get_sampler(name)
        sigmas, = S4SSigmas().get_sigmas(patcher, name)
        noise = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(4))
        out = run_sampler(patcher, sampler, sigmas, noise)
    with torch.no_grad():
        expected = solver.sample(zoo.load("digits-flow"), noise)
    assert (out - expected).abs().max() <= 1e-4


def test_step_counts_and_denoise_below_one_get_a_message_naming_the_fix(learned, monkeypatch):
    folder, name, _ = learned
    monkeypatch.setenv("S4S_COMFYUI_SOLVERS", str(folder))
    with comfy_host.installed():
        patcher, wrapper = comfy_host.digits_ddpm_patcher("eps", quantize=True)
        sampler, = S4SSampler().get_sampler(name)
        noise = torch.randn(2, 1, 8, 8)
        sigmas = wrapper.get_sigmas(20)  # ComfyUI's default of 20 steps
        with pytest.raises(ValueError, match=r"ask the host for 4 steps \(in ComfyUI: steps=4, or the S4S Sigmas node\)"):
            run_sampler(patcher, sampler, sigmas, noise)
        part_way = wrapper.get_sigmas(8)[-5:]  # denoise 0.5: the last 4 steps of 8
        with pytest.raises(ValueError, match=r"starts part-way .*denoise < 1.*--strength"):
            run_sampler(patcher, sampler, part_way, noise)
        with pytest.raises(FileNotFoundError, match="no solver file 'missing.json'"):
            S4SSampler().get_sampler("missing.json")
        with pytest.raises(ValueError, match="no solver file chosen: learn one with the S4S Learn node"):
            S4SSampler().get_sampler(comfyui.NO_FILES)
        with pytest.raises(ValueError, match="above this model's sigma_max"):
            comfyui.sigmas_for(patcher.get_model_object("model_sampling"),
                               s4s.make_solver("ddim", 4, torch.tensor([500.0, 10, 1, 0.1, 0.01]), zoo.load("digits")))


def test_a_guidance_range_file_runs_at_the_nodes_cfg(solvers):
    from s4s.learn.guidance import GuidanceParams, GuidanceRange, GuidanceSolver
    from s4s.learn.params import SolverParams

    model = zoo.load("digits-ddpm")
    start = s4s.make_solver("dpmpp_2m", 4, "karras", model)
    params = GuidanceParams(SolverParams("dpmpp_2m", start.grid), GuidanceRange(1.0, 8.0))
    GuidanceSolver.from_params(params, start.grid, "s4s_alt", {}).save(solvers / "range.json")
    with comfy_host.installed():
        sampler, = S4SSampler().get_sampler("range.json", cfg=3.0)
        assert torch.allclose(sampler.extra_options["solver"].sigmas, start.sigmas)
        with pytest.raises(ValueError, match="guidance scales 1 to 8: give the scale to sample at"):
            S4SSampler().get_sampler("range.json")
        with pytest.raises(ValueError, match=r"outside \[1, 8\]"):
            S4SSampler().get_sampler("range.json", cfg=12.0)
    assert S4SSampler.INPUT_TYPES()["required"]["solver"][0] == ["range.json"]


def test_install_writes_a_loader_comfyui_imports(tmp_path):
    root = tmp_path / "ComfyUI"
    (root / "custom_nodes").mkdir(parents=True)
    path = comfyui.install(root)
    assert path == root / "custom_nodes" / "comfyui-s4s" / "__init__.py"
    spec = importlib.util.spec_from_file_location("comfyui_s4s_loader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS
    assert comfyui.install(root / "custom_nodes") == path  # the same loader again: fine
    path.write_text("# someone else's\n")
    with pytest.raises(FileExistsError, match="not s4s's loader; pass --force"):
        comfyui.install(root)
    from s4s.cli import main

    assert main(["comfyui", "install", str(root), "--force"]) == 0 and "s4s.integrations.comfyui" in path.read_text()
    with pytest.raises(FileNotFoundError, match="not a ComfyUI folder"):
        comfyui.install(tmp_path / "elsewhere")


@pytest.mark.skipif(not REAL_COMFYUI, reason="ComfyUI is not importable here")
def test_nodes_inside_a_real_comfyui(solvers):
    """The S4S Sampler node's SAMPLER run by ComfyUI's own KSAMPLER on ComfyUI's own discrete
    sampling object, around digits-ddpm (ComfyUI's EPS arithmetic, its timestep rounding)."""
    import comfy.model_sampling
    import comfy.samplers

    class Sampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
        pass

    patcher, _ = comfy_host.digits_ddpm_patcher("eps", quantize=True)
    compvis = patcher.model.net
    sampling = Sampling()
    sampling.set_sigmas(((1 - compvis.alphas_cumprod) / compvis.alphas_cumprod) ** 0.5)

    class Wrap:  # CFGGuider's role: model(x, sigma, model_options, seed) -> x0, inner_model.model_sampling
        inner_model = type("Base", (), {"model_sampling": sampling})()

        def __call__(self, x, sigma, model_options=None, seed=None):
            t = sampling.timestep(sigma).float()
            eps = compvis.unet(sampling.calculate_input(sigma, x), t).sample
            return sampling.calculate_denoised(sigma, eps, x)

    reference = s4s_digits_ddpm(patcher, round_time=True)
    solver = s4s.make_solver("dpmpp_2m", 5, "karras", reference)
    solver.save(solvers / "hand.json")
    sampler, = S4SSampler().get_sampler("hand.json")
    sigmas = comfyui.sigmas_for(sampling, solver)
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    out = sampler.sample(Wrap(), sigmas, {"model_options": {}, "seed": 0}, None, noise, torch.zeros_like(noise))
    start = float(solver.sigmas[0])
    with torch.no_grad():
        expected = solver.sample(reference, noise * (1 + start ** 2) ** 0.5 / start)
    assert (out - expected).abs().max() <= 1e-4
