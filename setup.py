"""lpg_tf: Learned Policy Gradient (Oh et al., 2020) on TensorFlow 2."""

import setuptools

INSTALL_REQUIRES = [
    # dm-reverb 0.14 pins TensorFlow 2.15; the rest of the stack follows it.
    "tensorflow==2.15.*",
    "tf-keras==2.15.*",
    "dm-sonnet==2.0.2",
    "dm-reverb==0.14.0",
    "gymnasium>=1.0,<2",
    "ale-py==0.12.*",
    "opencv-python-headless>=4.8",
    # MinAtar's games (--env=minatar/<game>). Its requirements bring pandas,
    # scipy and seaborn for its display code; numpy<2 below keeps them on
    # numpy 1.x builds (pandas 3.0, scipy 1.17 on Python 3.11).
    "minatar==1.0.15",
    "numpy<2",
    "absl-py>=1.4",
    "ml_collections>=0.1.1",
    "matplotlib>=3.7",
    # Every export writes rule.onnx (tf2onnx) and checks it with onnxruntime.
    # tf2onnx 1.16 pins protobuf 3.20, below what the stack runs; 1.17 keeps
    # TensorFlow's protobuf 4 and supports TF 2.13-2.15. onnx 1.19 and later
    # need ml_dtypes >= 0.5 (TF 2.15 pins 0.3) and, from 1.23, protobuf 6.
    "tf2onnx==1.17.*",
    "onnx==1.18.*",
    "onnxruntime==1.32.*",
    # Population-based training of meta-learners (launchers/pbt_meta_train.py)
    # runs its members as Ray Tune trials. Tune imports pyarrow, whose 26.0
    # needs numpy 2; 25 is the last that runs on numpy 1.x.
    "ray[tune]==2.60.*",
    "pyarrow<26",
]

EXTRAS_REQUIRE = {
    "dev": [
        "pytest>=7.4",
        "pytest-timeout>=2.1",
        # The PBT kill test follows the launcher's child processes.
        "psutil>=5.9",
    ],
}

# The rules shipped in the package (lpg_tf/rules/pretrained/<NAME>/): each an
# export as lpg_tf.export writes it, its model card and its hyperparameters.
# tests/rules/test_pretrained.py checks that these cover every file there.
PACKAGE_DATA = {
    "lpg_tf.rules.pretrained": [
        "*/saved_model.pb",
        "*/fingerprint.pb",
        "*/rule.onnx",
        "*/variables/*",
        "*/assets/*",
        "*/assets.extra/*",
        "*/*.json",
        "*/*.md",
    ],
}

setuptools.setup(
    name="lpg_tf",
    version="0.1.0",
    description="Learned Policy Gradient (Discovering Reinforcement Learning Algorithms) in TensorFlow 2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["lpg_tf", "lpg_tf.*", "configs"]),
    package_data=PACKAGE_DATA,
    python_requires=">=3.11,<3.12",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
