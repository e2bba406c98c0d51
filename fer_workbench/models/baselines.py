"""Baselines: a small CNN, mini-Xception (Arriaga et al.) and ImageNet VGG16/VGG19 transfer."""

from __future__ import annotations

import warnings

import keras
from keras import layers, regularizers

from fer_workbench import CLASS_NAMES, IMAGE_SIZE
from fer_workbench.errors import WorkbenchError
from fer_workbench.models.common import tag_model


def _softmax(x, num_classes: int):
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(x)


def _standardize(x):
    # LayerNormalization over height, width and channel without its affine = per-image standardisation:
    # removes each face's brightness and contrast before the first convolution.
    return layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardize")(x)


def build_baseline_cnn(num_classes: int = len(CLASS_NAMES), dropout: float = 0.3, widths=(32, 64, 128),
                       dense=(128, 64), standardize: bool = True) -> keras.Model:
    """Three conv+pool stages (32/64/128) then dense 128/64: the usual first FER2013 CNN.

    ``standardize`` (per-image zero mean, unit variance) matters: without batch normalisation, the raw [0, 1]
    input holds this network at the majority class (synthetic default: 10 epochs of Adam at 5e-4 to 2e-3).
    """
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = _standardize(inputs) if standardize else inputs
    for i, width in enumerate(widths, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return keras.Model(inputs, _softmax(x, num_classes), name="baseline_cnn")


def build_mini_xception(num_classes: int = len(CLASS_NAMES), l2: float = 0.01, standardize: bool = False,
                        bn_momentum: float = 0.9) -> keras.Model:
    """mini-Xception from Arriaga, Valdenegro-Toro & Plöger (2017), as in the ``fer`` package (~58k params).

    Batch-norm momentum 0.9 (as the VGG's): Keras' 0.99 lags the weights so far in a short run that inference
    statistics are wrong (smoke: 0.8 training accuracy, 0.3 on PublicTest).
    """
    reg = regularizers.l2(l2)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = _standardize(inputs) if standardize else inputs
    for i in (1, 2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=reg, name=f"stem_conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"stem_bn{i}")(x)
        x = layers.Activation("relu", name=f"stem_relu{i}")(x)
    for m, width in enumerate((16, 32, 64, 128), start=1):
        residual = layers.Conv2D(width, 1, strides=2, padding="same", use_bias=False, name=f"m{m}_shortcut")(x)
        residual = layers.BatchNormalization(momentum=bn_momentum, name=f"m{m}_shortcut_bn")(residual)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, depthwise_regularizer=reg,
                                   pointwise_regularizer=reg, name=f"m{m}_sep1")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"m{m}_bn1")(x)
        x = layers.Activation("relu", name=f"m{m}_relu")(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, depthwise_regularizer=reg,
                                   pointwise_regularizer=reg, name=f"m{m}_sep2")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"m{m}_bn2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"m{m}_pool")(x)
        x = layers.Add(name=f"m{m}_add")([x, residual])
    x = layers.Conv2D(num_classes, 3, padding="same", name="class_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="mini_xception")


# Constructors looked up at call time so tests can stand in for an offline download.
TRANSFER_APPS = {"vgg16": lambda **kw: keras.applications.VGG16(**kw),
                 "vgg19": lambda **kw: keras.applications.VGG19(**kw)}
# keras.applications' "caffe" preprocessing: BGR channel means on 0..255 pixels.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def build_transfer(arch: str = "vgg16", num_classes: int = len(CLASS_NAMES), weights: str | None = "imagenet",
                   input_size: int = IMAGE_SIZE, head_units: int = 256, dropout: float = 0.5,
                   freeze_base: bool = True) -> keras.Model:
    """ImageNet VGG16/VGG19 with a new head, taking the package's gray 48×48 [0, 1] input.

    Inside the model the gray channel is resized to ``input_size`` (≥ 32, the applications' minimum), repeated
    to three channels and shifted to caffe scaling. When the ImageNet weights cannot be loaded (offline) the
    base is randomly initialised, a warning says so, and ``model.fer_pretrained`` is False.
    """
    if arch not in TRANSFER_APPS:
        raise WorkbenchError(f"unknown transfer architecture {arch!r}; choose one of {', '.join(TRANSFER_APPS)}")
    if input_size < 32:
        raise WorkbenchError(f"{arch} needs input_size ≥ 32, got {input_size}")
    shape = (input_size, input_size, 3)
    pretrained = False
    if weights is not None:
        try:
            base = TRANSFER_APPS[arch](include_top=False, weights=weights, input_shape=shape)
            pretrained = True
        except Exception as exc:  # noqa: BLE001 -- offline, corrupt cache, proxy: all mean "no ImageNet weights"
            warnings.warn(f"{arch}: could not load {weights} weights ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); using random initialisation",
                          RuntimeWarning, stacklevel=2)
    if not pretrained:
        base = TRANSFER_APPS[arch](include_top=False, weights=None, input_shape=shape)
    base.trainable = not (freeze_base and pretrained)

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = inputs
    if input_size != IMAGE_SIZE:
        x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(x)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    # (x − m/255) / (1/255) = 255·x − m: caffe preprocessing expressed with a serialisable layer.
    x = layers.Normalization(mean=[m / 255 for m in _CAFFE_MEAN_BGR], variance=[(1 / 255) ** 2] * 3,
                             name="caffe_scale")(x)
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(head_units, activation="relu", name="head_fc")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    model = keras.Model(inputs, _softmax(x, num_classes), name=f"{arch}_transfer")
    return tag_model(model, fer_pretrained=pretrained)
