"""benchmark.backbones: the backbone contract, inflation, errors, meta builds, init records."""

from __future__ import annotations

import copy
import time

import pytest
import torch
from torch import nn

from benchmark.backbones import (
    VIDEO_3D_MODELS,
    backbone_kind,
    build_backbone,
    inflate_resnet,
    param_count_millions,
)
from benchmark.config import BackboneConfig
from benchmark.device import resolve_runtime
from benchmark.errors import UserError


def build(name: str = "resnet10t", seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return build_backbone(BackboneConfig(name=name, **kw)).eval()


def randomize_bn(module: nn.Module, seed: int = 1) -> None:
    """Non-trivial BN statistics/affine so that copying them is actually tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


# --------------------------------------------------------------------------- 2D
def test_timm_2d_shapes_any_leading_dims():
    m = build("resnet10t")
    assert m.kind == "2d" and m.num_features == 512 and m.name == "resnet10t" and not m.inflated
    clip = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert m(clip).shape == (2, 4, 512)
        maps = m.forward_features(clip)
        assert maps.shape == (2, 4, 512, 1, 1)
        frames = clip.flatten(0, 1)
        assert m(frames).shape == (8, 512)
        assert m.forward_features(frames).shape == (8, 512, 1, 1)
        # folding time into the batch is exactly per-frame application
        torch.testing.assert_close(m(clip).flatten(0, 1), m(frames))
        torch.testing.assert_close(m(clip), maps.mean((-2, -1)))
    with pytest.raises(ValueError):
        m(torch.randn(3, 32, 32))


def test_timm_token_model_maps_and_head_width():
    vit = build("vit_tiny_patch16_224")
    with torch.no_grad():
        assert vit(torch.randn(1, 3, 224, 224)).shape == (1, 192)
        assert vit.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 192, 14, 14)
    assert vit.init["zero_init_last"] is None  # ViTs have no such option; recorded as not applicable
    mnv3 = build("mobilenetv3_small_100")  # head adds a conv after pooling: pooled width != map width
    with torch.no_grad():
        assert mnv3(torch.randn(2, 3, 32, 32)).shape == (2, mnv3.num_features)
        assert mnv3.forward_features(torch.randn(2, 3, 32, 32)).shape[1] == mnv3.map_features


# --------------------------------------------------------------------------- torchvision 3D
@pytest.mark.parametrize(
    "name, frames, side, t_out",
    [("r3d_18", 4, 32, 1), ("r2plus1d_18", 4, 32, 1), ("mc3_18", 4, 32, 4), ("s3d", 8, 32, 1)],
)
def test_torchvision_3d_shapes(name, frames, side, t_out):
    m = build(name)
    assert m.kind == "3d" and name in VIDEO_3D_MODELS
    width = 1024 if name == "s3d" else 512
    assert m.num_features == width
    x = torch.randn(1, frames, 3, side, side)  # [B, T, C, H, W]
    with torch.no_grad():
        maps = m.forward_features(x)
        assert maps.shape == (1, width, t_out, side // 16 if name != "s3d" else side // 32, maps.shape[-1])
        assert m(x).shape == (1, width)
        torch.testing.assert_close(m(x), maps.mean((-3, -2, -1)))
        two_views = x.unsqueeze(0)  # extra leading dims fold too: [V, B, T, C, H, W]
        assert m(two_views).shape == (1, 1, width)
    assert m.init["source"] == "torchvision"
    with pytest.raises(ValueError):
        m(torch.randn(1, 3, side, side))


# --------------------------------------------------------------------------- DPC's 2d3d ResNets
@pytest.mark.parametrize("name, published", [("r2d3d_18", 14.0), ("r2d3d_34", 33.0)])
def test_r2d3d_parameter_counts_match_dpc(name, published):
    """DPC's README and the TCE table: R2D3D-18 14M, R2D3D-34 33M parameters (measured 14.06M and 32.42M)."""
    m = build_backbone(BackboneConfig(name=name), device_meta=True)
    assert m.kind == "3d" and name in VIDEO_3D_MODELS and m.num_features == m.map_features == 256
    assert param_count_millions(m) == pytest.approx(published, rel=0.10)


def test_r2d3d_layout_follows_dpc():
    """2D blocks (1x3x3, shortcut stride (1,2,2)) in layer1-2, 3D blocks (3x3x3, stride 2 in time too) in layer3-4,
    a (1,7,7) stem with max-pool, layer4 at 256 channels and no ReLU after its last block."""
    m = build("r2d3d_18", zero_init_last=False)
    net = m.net
    assert net.stem[0].kernel_size == (1, 7, 7) and net.stem[0].stride == (1, 2, 2)
    assert isinstance(net.stem[3], nn.MaxPool3d)
    for layer in (net.layer1, net.layer2):
        assert all(block.conv1[0].kernel_size == (1, 3, 3) for block in layer)
    assert net.layer2[0].downsample[0].stride == (1, 2, 2)
    for layer in (net.layer3, net.layer4):
        assert all(block.conv1[0].kernel_size == (3, 3, 3) for block in layer)
        assert layer[0].downsample[0].stride == (2, 2, 2)
    assert net.layer4[0].conv2[0].out_channels == 256
    assert isinstance(net.layer4[-1].relu, nn.Identity) and isinstance(net.layer4[0].relu, nn.ReLU)
    x = torch.randn(2, 5, 3, 128, 128)  # DPC's block: 5 frames at 128 px -> [256, 2, 4, 4]
    with torch.no_grad():
        maps = m.forward_features(x)
        assert maps.shape == (2, 256, 2, 4, 4)
        assert (maps < 0).any()  # pre-ReLU features
        torch.testing.assert_close(m(x), maps.mean((-3, -2, -1)))


# --------------------------------------------------------------------------- inflation
@pytest.mark.parametrize("name", ["resnet10t", "resnet18"])
def test_inflated_shapes(name):
    m = build(name, inflate=True)
    assert m.kind == "3d" and m.inflated and m.num_features == 512
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert m.forward_features(x).shape == (2, 512, 4, 1, 1)  # time is never downsampled
        assert m(x).shape == (2, 512)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv3d)]
    assert convs and not any(isinstance(mod, (nn.Conv2d, nn.BatchNorm2d)) for mod in m.modules())
    for c in convs:  # k x k convs get t=3, 1x1 convs t=1; stride 1 and padding t//2 in time
        kt = 3 if c.kernel_size[1] > 1 else 1
        assert c.kernel_size[0] == kt and c.stride[0] == 1 and c.padding[0] == kt // 2
    assert m.init["scheme"] == "timm-default-inflated" and m.init["inflate_time_kernel"] == 3


def test_build_backbone_inflation_is_inflate_resnet_of_the_2d_net():
    """The public path equals inflating the same-seed 2D model (so the property tests below cover it)."""
    inflated = build("resnet10t", seed=3, inflate=True, zero_init_last=False)
    manual = inflate_resnet(build("resnet10t", seed=3, zero_init_last=False).net)
    ref = manual.state_dict()
    for k, v in inflated.net.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=0, atol=0)
    # a 3x3 conv's inflated weight sums over time back to the 2D weight
    w2d = build("resnet10t", seed=3, zero_init_last=False).net.layer1[0].conv1.weight
    torch.testing.assert_close(inflated.net.layer1[0].conv1.weight.sum(2), w2d)


def temporal_margin(net3d: nn.Module) -> int:
    """Frames on each side whose receptive field may reach a temporal border (upper bound)."""
    return sum(c.padding[0] for c in net3d.modules() if isinstance(c, nn.Conv3d))


def test_inflation_static_clip_equals_2d_away_from_borders():
    net2d = build("resnet10t", zero_init_last=False)
    randomize_bn(net2d)
    net3d = inflate_resnet(copy.deepcopy(net2d.net), time_kernel=3).eval()
    margin = temporal_margin(net3d)  # resnet10t: 3 stem convs + 8 block convs with t=3 -> 11
    T = 2 * margin + 2
    frame = torch.randn(2, 3, 32, 32)
    clip = frame.unsqueeze(2).expand(-1, -1, T, -1, -1).contiguous()  # [N, C, T, H, W], static
    with torch.no_grad():
        maps2d = net2d.net.forward_features(frame)  # [N, F, h, w]
        maps3d = net3d.forward_features(clip)  # [N, F, T, h, w]
    assert maps3d.shape[2] == T
    for t in range(margin, T - margin):
        torch.testing.assert_close(maps3d[:, :, t], maps2d, rtol=1e-4, atol=1e-4)
    # zero padding does change the borders (otherwise this test would prove nothing)
    assert not torch.allclose(maps3d[:, :, 0], maps2d, rtol=1e-4, atol=1e-4)


def test_inflation_replicate_padding_static_clip_pooled_equal():
    net2d = build("resnet10t", zero_init_last=False)
    randomize_bn(net2d, seed=2)
    net3d = inflate_resnet(copy.deepcopy(net2d.net), time_kernel=3, temporal_padding="replicate").eval()
    frame = torch.randn(2, 3, 32, 32)
    clip = frame.unsqueeze(2).expand(-1, -1, 4, -1, -1).contiguous()
    with torch.no_grad():
        pooled2d = net2d(frame)
        maps3d = net3d.forward_features(clip)
    for t in range(4):  # every position, borders included
        torch.testing.assert_close(maps3d[:, :, t], net2d.forward_features(frame), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(maps3d.mean((-3, -2, -1)), pooled2d, rtol=1e-4, atol=1e-4)


def test_inflation_errors():
    with pytest.raises(UserError, match="already a 3D model"):
        backbone_kind(BackboneConfig(name="r3d_18", inflate=True))
    with pytest.raises(UserError, match="ResNet-family"):
        backbone_kind(BackboneConfig(name="vit_tiny_patch16_224", inflate=True))
    with pytest.raises(UserError, match="odd"):
        backbone_kind(BackboneConfig(name="resnet18", inflate=True, inflate_time_kernel=2))
    with pytest.raises(UserError, match="SEModule"):  # in the resnet module, but not shape-agnostic
        build_backbone(BackboneConfig(name="seresnet18", inflate=True), device_meta=True)


# --------------------------------------------------------------------------- names, kinds, meta
@pytest.mark.parametrize(
    "typo, expected", [("resnet10tt", "resnet10t"), ("r3d18", "r3d_18"), ("r2plus1d18", "r2plus1d_18")]
)
def test_unknown_name_suggests_nearest(typo, expected):
    for call in (backbone_kind, build_backbone):
        with pytest.raises(UserError) as info:
            call(BackboneConfig(name=typo))
        msg = str(info.value)
        assert f"did you mean '{expected}'" in msg and "\n" not in msg


def test_backbone_kind_without_building():
    t0 = time.perf_counter()
    assert backbone_kind(BackboneConfig(name="resnet50")) == "2d"
    assert backbone_kind(BackboneConfig(name="resnet50", inflate=True)) == "3d"
    for name in VIDEO_3D_MODELS:
        assert backbone_kind(BackboneConfig(name=name)) == "3d"
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(
    "cfg",
    [
        BackboneConfig(name="resnet50"),
        BackboneConfig(name="resnet50", inflate=True),
        BackboneConfig(name="r2plus1d_18"),
        BackboneConfig(name="s3d"),
    ],
)
def test_meta_build_allocates_nothing(cfg):
    m = build_backbone(cfg, device_meta=True)
    tensors = list(m.parameters()) + list(m.buffers())
    assert tensors and all(t.device.type == "meta" for t in tensors)
    assert param_count_millions(m) > 1
    real = {"resnet50": 23.5, "r2plus1d_18": 31.3, "s3d": 7.9}.get(cfg.name)
    if real and not cfg.inflate:
        assert param_count_millions(m) == pytest.approx(real, abs=0.1)


def test_param_count():
    m = build("resnet10t")
    assert param_count_millions(m) == pytest.approx(4.92, abs=0.01)
    for p in m.net.conv1.parameters():
        p.requires_grad_(False)
    assert param_count_millions(m, trainable_only=True) < param_count_millions(m)


# --------------------------------------------------------------------------- init record
def _last_bn_weights(m: nn.Module) -> list[torch.Tensor]:
    from timm.models.resnet import BasicBlock as TimmBasic
    from torchvision.models.video.resnet import BasicBlock as VideoBasic

    out = []
    for mod in m.modules():
        if isinstance(mod, TimmBasic):
            out.append(mod.bn2.weight)
        elif isinstance(mod, VideoBasic):
            out.append(mod.conv2[1].weight)
    assert out
    return out


@pytest.mark.parametrize(
    "name, inflate", [("resnet10t", False), ("resnet10t", True), ("r3d_18", False), ("r2d3d_18", False)]
)
def test_zero_init_last_honoured_and_recorded(name, inflate):
    on = build_backbone(BackboneConfig(name=name, inflate=inflate, zero_init_last=True))
    off = build_backbone(BackboneConfig(name=name, inflate=inflate, zero_init_last=False))
    assert on.init["zero_init_last"] is True and off.init["zero_init_last"] is False
    assert all(bool((w == 0).all()) for w in _last_bn_weights(on))
    assert all(bool((w != 0).any()) for w in _last_bn_weights(off))
    assert on.init["scheme"] and on.init["drop_path_rate"] == 0.0


def test_drop_path_and_s3d_init():
    m = build("resnet10t", drop_path_rate=0.1)
    assert m.init["drop_path_rate"] == 0.1
    assert any(type(mod).__name__ == "DropPath" for mod in m.modules())
    with pytest.raises(UserError, match="drop_path_rate"):
        build_backbone(BackboneConfig(name="r3d_18", drop_path_rate=0.1), device_meta=True)
    assert build_backbone(BackboneConfig(name="s3d"), device_meta=True).init["zero_init_last"] is None


def test_deepcopy_follows_the_copy():
    """EMA teachers deepcopy the backbone: the copy must use its own weights."""
    m = build("r3d_18")
    twin = copy.deepcopy(m)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    x = torch.randn(1, 4, 3, 16, 16)
    with torch.no_grad():
        assert twin(x).abs().sum() == 0 and m(x).abs().sum() > 0


# --------------------------------------------------------------------------- bf16 + channels_last
@pytest.mark.parametrize(
    "name, inflate, shape",
    [
        ("resnet10t", False, (2, 4, 3, 32, 32)),
        ("resnet10t", True, (1, 4, 3, 32, 32)),
        ("r3d_18", False, (1, 4, 3, 16, 16)),
    ],
)
def test_bf16_channels_last_close_to_fp32(name, inflate, shape):
    m = build(name, inflate=inflate, zero_init_last=False)
    x = torch.randn(shape)
    with torch.no_grad():
        ref = m(x)
        ctx = resolve_runtime("cpu", "bf16", channels_last=True)
        ctx.prepare(m)
        convs = [mod.weight for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.Conv3d))]
        fmt = torch.channels_last if m.kind == "2d" else torch.channels_last_3d
        assert all(w.is_contiguous(memory_format=fmt) for w in convs if w.shape[-1] > 1)
        with ctx.autocast():
            out = m(ctx.to_input(x))
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
    cos = torch.nn.functional.cosine_similarity(out.float().flatten(1), ref.flatten(1)).min()
    assert cos > 0.99
    torch.testing.assert_close(out.float(), ref, rtol=0.1, atol=0.1 * ref.abs().max().item())


def test_concatenated_backbones_put_features_side_by_side_for_view_batches():
    from benchmark.backbones import ConcatenatedBackbones, build_backbone_like
    from benchmark.config import BackboneConfig

    a = build_backbone(BackboneConfig(name="test_resnet"))
    b = build_backbone_like(a)
    both = ConcatenatedBackbones(a, b).eval()
    views = torch.randn(2, 3, 3, 32, 32)  # [B, V, C, H, W]: how evaluation feeds a backbone
    with torch.no_grad():
        out, fa, fb = both(views), a.eval()(views), b.eval()(views)
    assert out.shape == (2, 3, a.num_features + b.num_features) == (*fa.shape[:2], both.num_features)
    assert torch.equal(out[..., : a.num_features], fa) and torch.equal(out[..., a.num_features :], fb)
    assert both.kind == a.kind == "2d"


def test_a_model_timm_flags_fixed_size_is_refused_only_where_it_does_not_run():
    """ViT asserts its 224 px; XCiT carries the same flag and runs at any size; a ResNet has no flag. The check
    runs a forward on the meta device, and a smoke run gives a ViT its own size, a ResNet 32 px."""
    from benchmark.backbones import check_resolution, resolution_problem
    from benchmark.config import load_config
    from benchmark.launch.local import smoke_resolution

    assert "doesn't match model (224)" in resolution_problem(BackboneConfig(name="vit_tiny_patch16_224"), 32)
    assert resolution_problem(BackboneConfig(name="vit_tiny_patch16_224"), 224) == ""
    check_resolution(BackboneConfig(name="xcit_tiny_12_p8_224"), 112)  # flagged, but it runs: no error
    check_resolution(BackboneConfig(name="resnet10t"), 40)
    with pytest.raises(UserError, match="it is built for 224 x 224 frames: set data.resolution=224"):
        check_resolution(BackboneConfig(name="vit_tiny_patch16_224"), 112)
    assert smoke_resolution(load_config({}, ["backbone.name=vit_tiny_patch16_224", "data.resolution=224"])) == 224
    assert smoke_resolution(load_config({}, ["backbone.name=resnet10t", "data.resolution=112"])) == 32
