rule body_model:
    input:
        params=L.params("body_model"),
        code=W.code("body_model"),
    output:
        directory(L.body),
    log:
        L.log("body_model"),
    benchmark:
        L.benchmark("body_model")
    group: W.group("body_model")
    threads: W.threads("body_model")
    resources:
        **W.resources("body_model"),
    conda:
        ENV
    shell:
        "uvhmr body-model --params {input.params:q} --out {output:q} --log {log:q}"


rule uv_assets:
    input:
        params=L.params("uv_assets"),
        body=L.body,
        code=W.code("uv_assets"),
    output:
        directory(L.uv),
    log:
        L.log("uv_assets"),
    benchmark:
        L.benchmark("uv_assets")
    group: W.group("uv_assets")
    threads: W.threads("uv_assets")
    resources:
        **W.resources("uv_assets"),
    conda:
        ENV
    shell:
        "uvhmr uv-assets --params {input.params:q} --body {input.body:q} --out {output:q} --log {log:q}"
