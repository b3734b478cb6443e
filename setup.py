"""The NB-101 hashing kernel (core/nb101/_wlhash.c) compiled into the wheel, so that every node that
installs the package has it (everything else about the package is in pyproject.toml). Optional: where
no compiler works the package installs without it and hashing uses the plain-Python algorithm."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "core.nb101._wlhash",
            ["core/nb101/_wlhash.c"],
            define_macros=[("SWEEPS_PYTHON_MODULE", "1")],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
