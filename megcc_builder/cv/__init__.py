"""A build's CV operators (MegCC's tinycv): what was asked for, and the C it becomes.

    request = parse_cv_flag("resize_linear:ui8,f32;flip:ui8")     # the --cv flag
    request = check_cv_section({"resize_linear": ["ui8"]}, "cfg.json")  # the config's "cv"
    files = generate(request, "x86_64-v3")   # {"tinycv_c.h": ..., "tinycv.c": ...}

A request is a sorted tuple of (operator name, dtype suffix). Each entry becomes a TinyCV op
lowered through the kernel registry (kernels/cv/), so implementations are chosen like the
model's kernels; only requested functions are generated, and a build that asks for none
gets no CV files at all.
"""
from .request import CvRequest, check_cv_section, merge_requests, parse_cv_flag  # noqa: F401
from .generate import CV_FILES, generate, select  # noqa: F401
