rule train_dmp:
    input:
        params=L.params("train_dmp", "{dmp}"),
        data=L.data("dmp_train"),
        uv=L.uv,
        body=L.body,
        code=W.code("train_dmp"),
    output:
        L.dmp_model("{dmp}"),
    log:
        L.log("train_dmp", "{dmp}"),
    benchmark:
        L.benchmark("train_dmp", "{dmp}")
    group: W.group("train_dmp")
    threads: W.threads("train_dmp")
    resources:
        **W.resources("train_dmp"),
    conda:
        ENV
    shell:
        "uvhmr train-dmp --params {input.params:q} --data {input.data:q} --uv {input.uv:q}"
        " --body {input.body:q} --out {output:q} --log {log:q}"


rule train_hmr:
    input:
        params=L.params("train_hmr"),
        data=L.data("dmp_train"),
        body=L.body,
        code=W.code("train_hmr"),
    output:
        L.hmr_model,
    log:
        L.log("train_hmr"),
    benchmark:
        L.benchmark("train_hmr")
    group: W.group("train_hmr")
    threads: W.threads("train_hmr")
    resources:
        **W.resources("train_hmr"),
    conda:
        ENV
    shell:
        "uvhmr train-hmr --params {input.params:q} --data {input.data:q} --body {input.body:q}"
        " --out {output:q} --log {log:q}"


rule dmp_cache:
    input:
        params=L.params("dmp_cache"),
        model=L.dmp_model("{dmp}"),
        train=L.data("stage2_train"),
        test=L.data("test"),
        uv=L.uv,
        code=W.code("dmp_cache"),
    output:
        directory(L.dmp_cache("{dmp}")),
    log:
        L.log("dmp_cache", "{dmp}"),
    benchmark:
        L.benchmark("dmp_cache", "{dmp}")
    group: W.group("dmp_cache")
    threads: W.threads("dmp_cache")
    resources:
        **W.resources("dmp_cache"),
    conda:
        ENV
    shell:
        "uvhmr dmp-cache --params {input.params:q} --model {input.model:q} --train-data {input.train:q}"
        " --test-data {input.test:q} --uv {input.uv:q} --out {output:q} --log {log:q}"


rule train_ik:
    input:
        params=L.params("train_ik", "{ik}"),
        mocap=L.mocap,
        dmp_cache=L.dmp_cache(V.dmp),
        data=L.data("stage2_train"),
        body=L.body,
        uv=L.uv,
        code=W.code("train_ik"),
    output:
        directory(L.ik_model("{ik}")),
    log:
        L.log("train_ik", "{ik}"),
    benchmark:
        L.benchmark("train_ik", "{ik}")
    group: W.group("train_ik")
    threads: W.threads("train_ik")
    resources:
        **W.resources("train_ik"),
    conda:
        ENV
    shell:
        "uvhmr train-ik --params {input.params:q} --mocap {input.mocap:q} --dmp-cache {input.dmp_cache:q}"
        " --data {input.data:q} --body {input.body:q} --uv {input.uv:q} --out {output:q} --log {log:q}"


rule ik_cache:
    input:
        params=L.params("ik_cache"),
        model=L.ik_model("{ik}"),
        dmp_cache=L.dmp_cache(V.dmp),
        body=L.body,
        uv=L.uv,
        code=W.code("ik_cache"),
    output:
        directory(L.ik_cache("{ik}")),
    log:
        L.log("ik_cache", "{ik}"),
    benchmark:
        L.benchmark("ik_cache", "{ik}")
    group: W.group("ik_cache")
    threads: W.threads("ik_cache")
    resources:
        **W.resources("ik_cache"),
    conda:
        ENV
    shell:
        "uvhmr ik-cache --params {input.params:q} --model {input.model:q} --dmp-cache {input.dmp_cache:q}"
        " --body {input.body:q} --uv {input.uv:q} --out {output:q} --log {log:q}"


rule train_uvi:
    input:
        params=L.params("train_uvi", "{uvi}"),
        dmp_cache=L.dmp_cache(V.dmp),
        ik_cache=L.ik_cache(V.ik),
        data=L.data("stage2_train"),
        uv=L.uv,
        body=L.body,
        code=W.code("train_uvi"),
    output:
        directory(L.uvi_model("{uvi}")),
    log:
        L.log("train_uvi", "{uvi}"),
    benchmark:
        L.benchmark("train_uvi", "{uvi}")
    group: W.group("train_uvi")
    threads: W.threads("train_uvi")
    resources:
        **W.resources("train_uvi"),
    conda:
        ENV
    shell:
        "uvhmr train-uvi --params {input.params:q} --dmp-cache {input.dmp_cache:q} --ik-cache {input.ik_cache:q}"
        " --data {input.data:q} --uv {input.uv:q} --body {input.body:q} --out {output:q} --log {log:q}"
