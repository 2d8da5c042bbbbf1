# What a researcher reads: reports/<profile>/. Outputs marked with report() are what
# `snakemake --report report.html` shows (captions in workflow/report/); dvc.yaml's top-level
# `plots:` draws the plots/ files.
rule report:
    input:
        params=L.params("report"),
        metrics=[L.metrics(t) for t in evaluate_targets(P)],
        models=trained_models(L, P),   # their per-epoch training CSVs sit beside them
        code=W.code("report"),
    output:
        ablation=report(L.report("ablation.md"), caption="../report/ablation.rst", category="Tables"),
        ablation_csv=report(L.report("ablation.csv"), caption="../report/ablation.rst", category="Tables"),
        comparison=report(L.report("comparison.md"), caption="../report/comparison.rst", category="Tables"),
        metrics=report(L.report("metrics.json"), caption="../report/metrics.rst", category="Tables"),
        per_joint=report(L.report("per_joint_mpjpe.csv"), caption="../report/per_joint.rst", category="Tables"),
        plots=[report(L.report(f), caption="../report/plots.rst", category="Plot data") for f in report_plots(V)],
    params:
        metrics_dir=lambda w, input: os.path.dirname(input.metrics[0]),
        models_dir=lambda w, input: os.path.commonpath(input.models),   # results/<profile>/models
        out_dir=lambda w, output: os.path.dirname(output.ablation),       # reports/<profile>
    log:
        L.log("report"),
    benchmark:
        L.benchmark("report")
    group: W.group("report")
    threads: W.threads("report")
    resources:
        **W.resources("report"),
    conda:
        ENV
    shell:
        "uvhmr report --params {input.params:q} --metrics {params.metrics_dir:q} --models {params.models_dir:q}"
        " --out {params.out_dir:q} --log {log:q}"


rule figures:
    input:
        params=L.params("figures"),
        data=L.data("test"),
        uv=L.uv,
        mocap=L.mocap,
        body=L.body,
        dmp_cache=L.dmp_cache(V.dmp),
        ik_model=L.ik_model(V.ik),
        ik_cache=L.ik_cache(V.ik),
        uvi_model=L.uvi_model(V.uvi),
        code=W.code("figures"),
    output:
        report(directory(L.figures), patterns=["{name}.png"], caption="../report/figures.rst", category="Figures"),
    log:
        L.log("figures"),
    benchmark:
        L.benchmark("figures")
    group: W.group("figures")
    threads: W.threads("figures")
    resources:
        **W.resources("figures"),
    conda:
        ENV
    shell:
        "uvhmr figures --params {input.params:q} --data {input.data:q} --uv {input.uv:q} --mocap {input.mocap:q}"
        " --body {input.body:q} --dmp-cache {input.dmp_cache:q} --ik-model {input.ik_model:q}"
        " --ik-cache {input.ik_cache:q} --uvi-model {input.uvi_model:q} --out {output:q} --log {log:q}"
