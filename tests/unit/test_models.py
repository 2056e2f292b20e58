"""Every registered variant, via the registry: builds, reconstructs, learns, saves and loads safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeflow.errors import ParamsError
from aeflow.models.components import ConvDecoder2d, ConvEncoder2d
from aeflow.models.registry import available, build_model, get_variant, load_model, save_model

VARIANTS = available()


def test_registry_lists_vanilla_and_rejects_unknown_names():
    assert "vanilla" in VARIANTS
    with pytest.raises(ParamsError, match=r"unknown variant 'nope'; available variants: .*vanilla"):
        get_variant("nope")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_forward_shapes_and_latent_rule(variant, architecture):
    model = build_model(
        {"variant": variant, "architecture": architecture, "channels": [8, 16], "hidden_dims": [32]},
        [1, 28, 28],
    )
    assert model.latent_dim == 10
    x = torch.rand(5, 1, 28, 28)
    out = model(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert model.encode(x).shape == (5, 10)


@pytest.mark.parametrize("shape", [[1, 20, 20], [3, 32, 32], [2, 9, 9]])
def test_conv_components_restore_any_square_size(shape):
    enc = ConvEncoder2d(shape, [4, 8, 8], 1, [16], 3)
    dec = ConvDecoder2d(shape, [4, 8, 8], 1, [16], 3)
    assert dec(enc(torch.rand(2, *shape))).shape == (2, *shape)


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_falls_on_real_digits(variant, shuffled):
    torch.manual_seed(0)
    x = torch.from_numpy(shuffled[0][:256, None] / 255.0).float()
    model = build_model(
        {"variant": variant, "architecture": "mlp", "hidden_dims": [64]}, [1, 28, 28], optim={"lr": 3e-3}
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, logs = model.model_step((x, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(logs["mse"])
    assert float(logs["mse"]) < 0.6 * first


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_and_load_with_weights_only(variant, tmp_path):
    model = build_model(
        {"variant": variant, "channels": [4, 8], "hidden_dims": [16], "latent_dim": 3}, [1, 28, 28]
    ).eval()
    save_model(model, str(tmp_path / "m.pt"))
    loaded = load_model(str(tmp_path / "m.pt"))
    x = torch.rand(3, 1, 28, 28)
    assert type(loaded) is type(model) and loaded.latent_dim == 3
    assert torch.equal(loaded(x), model(x))
    blob = torch.load(tmp_path / "m.pt", weights_only=True)  # plain tensors and builtins only
    assert set(blob) == {"state_dict", "hyper_parameters", "variant", "data_config"}
    assert blob["data_config"] is None and loaded.data_config is None


def test_undercomplete_rule_for_vanilla():
    with pytest.raises(ParamsError) as exc:
        build_model({"variant": "vanilla", "latent_dim": 784}, [1, 28, 28], where="mnist.model")
    msg = str(exc.value)
    assert "'mnist.model.latent_dim' = 784 is not smaller than the 784 input values one code describes" in msg
    assert "Fix:" in msg


def test_bce_needs_unit_range_output():
    with pytest.raises(ParamsError, match="loss 'bce' needs data in \\[0, 1\\]"):
        build_model({"loss": "bce"}, [1, 28, 28], output="identity")
    model = build_model({"loss": "mse", "architecture": "mlp"}, [1, 28, 28], output="identity")
    assert np.isfinite(float(model.model_step((torch.randn(4, 1, 28, 28),) * 2)[0].detach()))


def test_every_variant_module_has_its_params_class_and_no_more():
    from aeflow.models.configs import CONFIGS
    from aeflow.models.registry import variant_modules

    assert sorted(CONFIGS) == variant_modules() == VARIANTS
    for name in VARIANTS:
        assert get_variant(name).config_class is CONFIGS[name]


# ------------------------------------------------------------------ temporal_conv: a code per time step
_TEMPORAL = {
    "variant": "denoising",
    "architecture": "temporal_conv",
    "latent_dim": 6,
    "hidden_dims": [16],
    "blocks_per_stage": 2,
    "loss": "mse",
}


@pytest.mark.parametrize("shape", [[1, 9, 20], [3, 20]])
def test_temporal_conv_codes_every_step_and_sees_only_its_dilated_context(shape):
    """Spectrogram patches (C, bins, T) and sensor windows (C, T) alike: the code is (latent, T), and with
    dilations 1, 2 each side (encoder and decoder) a step sees ±6 steps and nothing further."""
    torch.manual_seed(0)
    model = build_model(_TEMPORAL, shape, output="identity").eval()
    x = torch.randn(2, *shape)
    assert model.encode(x).shape == (2, 6, shape[-1])
    with torch.no_grad():
        y = model(x)
        moved = x.clone()
        moved[..., 15] += 5.0
        delta = (model(moved) - y).abs().flatten(1, -2).amax(dim=(0, 1))
    assert y.shape == x.shape
    assert torch.all(delta[9:] > 0) and float(delta[:9].max()) == 0.0  # 15 − 6 = 9 is the first it reaches
    # The code compresses each step (latent 6 of 9 or 3 values), whatever the length: the same weights
    # serve a longer input.
    n_params = sum(p.numel() for p in model.parameters())
    longer = build_model(_TEMPORAL, [*shape[:-1], 64], output="identity")
    assert sum(p.numel() for p in longer.parameters()) == n_params


def test_temporal_conv_latent_rule_and_refusals():
    auto = build_model({**_TEMPORAL, "variant": "vanilla", "latent_dim": "auto"}, [1, 257, 16])
    assert auto.latent_dim == 8  # round(log2(257)): one step's bins, not the patch's 4,112 values
    with pytest.raises(ParamsError, match="not smaller than the 257 input values one code describes"):
        build_model({**_TEMPORAL, "variant": "vanilla", "latent_dim": 257}, [1, 257, 16])
    for variant in ("vae", "contractive", "sparse"):
        with pytest.raises(ParamsError, match=f"the {variant} autoencoder needs one flat code"):
            build_model({**_TEMPORAL, "variant": variant, "loss": "mse"}, [1, 9, 20])
    with pytest.raises(ParamsError, match=r"needs \(…, T\) sequences"):
        build_model(_TEMPORAL, [20])


def test_an_ensemble_trains_each_member_as_if_alone_and_saves_as_one_model(tmp_path):
    """``members: 3`` builds three autoencoders of the variant, the first with the weights a single model
    gets from the same seed; one optimiser step on the summed loss moves each member exactly as a step on
    its own loss would; a saved ensemble loads as one (same answers) and reads as the members' mean."""
    import copy

    from aeflow.models.ensemble import AutoencoderEnsemble, member_outputs

    section = {
        "variant": "sparse",
        "architecture": "mlp",
        "hidden_dims": [16],
        "latent_dim": 4,
        "loss": "mse",
    }
    torch.manual_seed(3)
    single = build_model(section, [1, 6, 6], output="identity")
    torch.manual_seed(3)
    model = build_model({**section, "members": 3}, [1, 6, 6], output="identity")
    assert isinstance(model, AutoencoderEnsemble) and len(model.members) == 3
    assert model.variant_name == "sparse" and model.latent_dim == 12
    first = next(single.parameters())
    assert torch.equal(next(model.members[0].parameters()), first)
    assert not torch.equal(next(model.members[1].parameters()), first)

    x = torch.randn(8, 1, 6, 6)
    alone = [copy.deepcopy(m) for m in model.members]
    loss, logs = model.model_step((x, x))
    loss.backward()
    for m, a in zip(model.members, alone, strict=True):
        a.model_step((x, x))[0].backward()
        for p, q in zip(m.parameters(), a.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad)
    each = [float(a.model_step((x, x))[0].detach()) for a in alone]
    assert float(loss) == pytest.approx(sum(each), rel=1e-5)  # optimised: the sum ...
    assert float(logs["loss"]) == pytest.approx(np.mean(each), rel=1e-5)  # ... logged: one model's scale

    model.eval()
    outs = member_outputs(model, x)
    assert outs.shape == (3, 8, 1, 6, 6)
    torch.testing.assert_close(model(x), outs.mean(dim=0))
    torch.testing.assert_close(model.decode(model.encode(x)), model(x))
    assert member_outputs(single.eval(), x).shape == (1, 8, 1, 6, 6)
    save_model(model, str(tmp_path / "m.pt"))
    loaded = load_model(str(tmp_path / "m.pt"))
    assert isinstance(loaded, AutoencoderEnsemble) and len(loaded.members) == 3
    assert torch.equal(loaded(x), model(x))


def test_an_ensemble_of_generative_models_is_refused():
    with pytest.raises(ParamsError) as exc:
        build_model({"variant": "vae", "members": 2, "latent_dim": 3}, [1, 28, 28], where="mnist.model")
    msg = str(exc.value)
    assert "'mnist.model.members' = 2" in msg and "no single one to sample" in msg and "members: 1" in msg
    with pytest.raises(ParamsError, match="members"):
        build_model({"members": 0}, [1, 28, 28])


def test_the_variant_comparison_and_the_sweep_compare_single_models():
    """``with_overrides`` (the variant comparison's and the latent sweep's sections) keeps the model's common
    fields but not ``members``: a VAE compared beside an ensemble's variant is one model, not refused."""
    from aeflow.models.configs import model_section, with_overrides

    ensemble = model_section({"variant": "vanilla", "architecture": "mlp", "hidden_dims": [16], "members": 3})
    vae = with_overrides(ensemble, "vae", {"latent_dim": 4})
    assert vae.members == 1 and vae.hidden_dims == [16] and vae.architecture == "mlp"
    assert build_model(vae, [1, 28, 28]).latent_dim == 4
