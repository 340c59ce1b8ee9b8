"""Evaluation layer: generation metrics (torch-fidelity), reconstruction/completion PSNR, timing, outputs.

Modules: ``keys`` (metric key constants), ``config`` (EvalConfig), ``extractors`` (the suite-trained
feature extractor), ``fid`` (torch-fidelity wrapper), ``recon`` (PSNR, IoU, accuracy), ``completion``
(masks, PSNR on the missing region), ``maps`` (mixture maps for figures), ``timing`` (interleaved
timing harness), ``io`` (atomic JSON outputs), ``paper`` (the paper's numbers), ``pipeline``
(one (dataset, model) evaluation end to end).
"""
