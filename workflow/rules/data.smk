rule mocap:
    input:
        params=L.params("mocap"),
        body=L.body,
        code=W.code("mocap"),
    output:
        directory(L.mocap),
    log:
        L.log("mocap"),
    benchmark:
        L.benchmark("mocap")
    group: W.group("mocap")
    threads: W.threads("mocap")
    resources:
        **W.resources("mocap"),
    conda:
        ENV
    shell:
        "uvhmr mocap --params {input.params:q} --body {input.body:q} --out {output:q} --log {log:q}"


rule dataset:
    input:
        params=L.params("dataset"),
        body=L.body,
        uv=L.uv,
        mocap=L.mocap,
        code=W.code("dataset"),
    output:
        directory(L.data("{split}")),
    log:
        L.log("dataset", "{split}"),
    benchmark:
        L.benchmark("dataset", "{split}")
    group: W.group("dataset")
    threads: W.threads("dataset")
    resources:
        **W.resources("dataset"),
    conda:
        ENV
    shell:
        "uvhmr dataset --params {input.params:q} --body {input.body:q} --uv {input.uv:q}"
        " --mocap {input.mocap:q} --split {wildcards.split} --out {output:q} --log {log:q}"
