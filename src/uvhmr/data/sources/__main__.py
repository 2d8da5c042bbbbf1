"""`python -m uvhmr.data.sources`: build some shards of a synthetic split, what the synthetic
source's worker processes run (`uvhmr.data.sources.synthetic.main`). An entry point of the
package rather than `-m uvhmr.data.sources.synthetic`, which the package's own import of that
module would run twice."""
from uvhmr.data.sources.synthetic import main

main()
