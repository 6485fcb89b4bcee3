"""Write digits_int8_qdq.onnx: the digits CNN of make_model.py (same seeded training), its
BatchNorms folded into the convolutions, as an ONNX model quantized by onnxruntime's static
QDQ quantizer (per-channel int8 weights, int8 activations, MinMax calibration on 1024
training images): the ONNX route to the same int8 sample (`scons run-digits-int8-qdq`).

    python samples/digits/make_qdq_model.py [out_dir]
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model as mm  # noqa: E402  (the float sample's network and data)


def to_onnx(net) -> onnx.ModelProto:
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv(x, seq, name):
        conv_m, bn = seq[0], seq[1]
        k = bn.weight.numpy().reshape(-1) / np.sqrt(bn.running_var.numpy().reshape(-1) + bn.eps)
        w = conv_m.weight.numpy() * k[:, None, None, None]
        b = bn.bias.numpy().reshape(-1) - bn.running_mean.numpy().reshape(-1) * k
        nodes.append(helper.make_node("Conv", [x, const(name + "_w", w), const(name + "_b", b)],
                                      [name], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        return name

    def node(op, ins, name, **attrs):
        nodes.append(helper.make_node(op, ins, [name], **attrs))
        return name

    x = node("Relu", [conv("data", net.c1, "c1")], "r1")
    x = node("Relu", [conv(x, net.c2, "c2")], "r2")
    x = node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = node("HardSwish", [conv(x, net.c3, "c3")], "hs")
    x = node("Flatten", [x], "flat", axis=1)
    y = node("Gemm", [x, const("fc_w", net.fc.weight.numpy()), const("fc_b", net.fc.bias.numpy())],
             "logits", transB=1)
    graph = helper.make_graph(nodes, "digits", [helper.make_tensor_value_info(
        "data", TensorProto.FLOAT, ["N", 1, 8, 8])], [helper.make_tensor_value_info(
            y, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


class _Calibration:
    def __init__(self, images):
        self.it = iter([{"data": images[i:i + 1]} for i in range(len(images))])

    def get_next(self):
        return next(self.it, None)


def main(out_dir: str) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    net, _ = mm.train()
    x_tr, _, x_te, y_te = mm.load_split()
    out = os.path.join(out_dir, "digits_int8_qdq.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, "digits.onnx")
        onnx.save(to_onnx(net), float_path)
        quant_pre_process(float_path, float_path, skip_symbolic_shape=True)
        quantize_static(float_path, out, _Calibration(x_tr[:1024]), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    (logits,) = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"]).run(
        None, {"data": x_te})
    print(f"QDQ int8 test accuracy (onnxruntime): {float((logits.argmax(1) == y_te).mean()):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
