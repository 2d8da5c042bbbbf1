rule evaluate:
    input:
        unpack(lambda w: {"params": L.params("evaluate", w.target), **evaluate_inputs(L, P, w.target)}),
        code=W.code("evaluate"),
    output:
        L.metrics("{target}"),
    params:
        inputs=lambda w: flags(evaluate_inputs(L, P, w.target)),
    log:
        L.log("evaluate", "{target}"),
    benchmark:
        L.benchmark("evaluate", "{target}")
    group: W.group("evaluate")
    threads: W.threads("evaluate")
    resources:
        **W.resources("evaluate"),
    conda:
        ENV
    shell:
        "uvhmr evaluate --params {input.params:q} --target {wildcards.target} {params.inputs}"
        " --out {output:q} --log {log:q}"

