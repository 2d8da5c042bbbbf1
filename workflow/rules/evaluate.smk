rule evaluate:
    input:
        unpack(lambda w: {"params": L.params("evaluate"), **evaluate_inputs(L, P, w.target)}),
    output:
        L.metrics("{target}"),
    params:
        inputs=lambda w: flags(evaluate_inputs(L, P, w.target)),
    log:
        L.log("evaluate", "{target}"),
    benchmark:
        L.benchmark("evaluate", "{target}")
    threads: W.threads("evaluate")
    resources:
        **W.resources("evaluate"),
    conda:
        ENV
    shell:
        "uvhmr evaluate --params {input.params:q} --target {wildcards.target} {params.inputs}"
        " --out {output:q} --log {log:q}"


rule report:
    input:
        params=L.params("report"),
        metrics=[L.metrics(t) for t in evaluate_targets(P)],
    output:
        directory(L.reports),
    params:
        metrics_dir=lambda w, input: os.path.dirname(input.metrics[0]),
    log:
        L.log("report"),
    benchmark:
        L.benchmark("report")
    threads: W.threads("report")
    resources:
        **W.resources("report"),
    conda:
        ENV
    shell:
        "uvhmr report --params {input.params:q} --metrics {params.metrics_dir:q} --out {output:q} --log {log:q}"
