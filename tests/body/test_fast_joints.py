"""The fast joints (forward kinematics plus the few vertices a joint set needs, issue #20) against
the body model's own forward, for random poses and shapes."""
import roma
import torch

from uvhmr.body.fast_joints import anny_shape_coefficients, fast_joint_set, joint_set_vertices


def _random_bodies(anny, n: int, seed: int):
    """n random poses (axis-angle, 0.5 rad per component, the root included) and shapes: half
    from Anny's adult prior, half uniform over the whole phenotype box (children and extremes)."""
    g = torch.Generator().manual_seed(seed)
    pose = 0.5 * torch.randn(n, anny.num_joints, 3, generator=g)
    shape = torch.cat([anny.sample_shape(n // 2, seed), torch.rand(n - n // 2, len(anny.shape_labels), generator=g)])
    return pose, shape


def test_fast_joints_equal_the_body_models_joints(anny):
    pose, shape = _random_bodies(anny, 24, seed=0)
    vidx = torch.arange(0, anny.num_vertices, 97)
    with torch.no_grad():
        ref = anny(pose, shape)
        for js, want in ((anny.lsp14, ref.lsp14), (anny.joints24, ref.joints24)):
            joints, verts = fast_joint_set(anny, js, roma.rotvec_to_rotmat(pose), shape, vidx)
            assert joints.shape == want.shape
            assert (joints - want).norm(dim=-1).max() < 1e-4          # 0.1 mm
            assert (verts - ref.vertices[:, vidx]).norm(dim=-1).max() < 1e-4
    # LSP-14's head top is a mesh vertex, not a bone head: the fast path skins it.
    idx, _ = joint_set_vertices(anny.lsp14)
    assert len(idx) == int((anny.lsp14.bone < 0).sum()) == 1


def test_shape_coefficients_and_gradients_match_annys(anny):
    # The gathered product is Anny's own coefficients, and so are its gradients.
    _, shape = _random_bodies(anny, 8, seed=1)
    m = anny.model
    a = shape.clone().requires_grad_(True)
    b = shape.clone().requires_grad_(True)
    mine = anny_shape_coefficients(m, a)
    empty = shape.new_zeros(len(shape), 0)
    theirs = m._get_phenotype_blendshape_coefficients(b, empty, empty)
    assert torch.allclose(mine, theirs, atol=1e-6)
    w = torch.randn(theirs.shape, generator=torch.Generator().manual_seed(0))
    (mine * w).sum().backward()
    (theirs * w).sum().backward()
    assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_fast_joint_gradients_match_the_body_models(anny):
    # l_ji's gradient through the fast path is the full model's (to float precision).
    pose, shape = _random_bodies(anny, 4, seed=2)
    w = torch.randn(4, 14, 3, generator=torch.Generator().manual_seed(3))
    grads = []
    for fast in (True, False):
        rv, sh = pose.clone().requires_grad_(True), shape.clone().requires_grad_(True)
        if fast:
            joints, _ = fast_joint_set(anny, anny.lsp14, roma.rotvec_to_rotmat(rv), sh)
        else:
            joints = anny(rv, sh).lsp14
        (joints * w).sum().backward()
        grads.append((rv.grad, sh.grad))
    for g_fast, g_full in zip(*grads):
        assert torch.allclose(g_fast, g_full, rtol=1e-3, atol=1e-4)


def test_polar_rotation_is_romas_special_procrustes_including_reflections_and_near_singular():
    # Far from orthonormal (as Anny's rest orientations are), with negative determinants and a
    # nearly singular one: the Newton path and its fallback together give roma's rotation.
    from uvhmr.body.fast_joints import polar_rotation
    g = torch.Generator().manual_seed(3)
    m = torch.randn(64, 3, 3, generator=g)
    m[0] = torch.diag(torch.tensor([1.0, 1.0, 1e-4]))
    assert (torch.linalg.det(m) < 0).any()
    got = polar_rotation(m)
    assert (got - roma.special_procrustes(m)).abs().max() < 1e-5
    assert torch.allclose(torch.linalg.det(got), torch.ones(64), atol=1e-5)
    a = m.clone().requires_grad_(True)
    polar_rotation(a).sum().backward()
    assert torch.isfinite(a.grad).all()
