"""The built-in pose prior: Anny's local-ref axes, joint limits, left-right symmetry, self-penetration."""
import numpy as np
import pytest
import torch

from uvhmr.data.pose_prior import CATEGORIES, LIMITS_DEG, PenetrationCheck, PosePrior, PriorError

N = 20000


@pytest.fixture(scope="module")
def prior(anny):
    return PosePrior.from_model(anny)


@pytest.fixture(scope="module")
def samples(prior):
    return prior.sample(N, np.random.default_rng(123))


@pytest.fixture(scope="module")
def check(anny):
    return PenetrationCheck(anny)


def _pose(anny, **bones):
    p = torch.zeros(1, anny.num_joints, 3)
    for b, v in bones.items():
        p[0, anny.joint_names.index(b.replace("_", "."))] = torch.tensor(v, dtype=torch.float32)
    return p


def _joint(anny, pose, name):
    with torch.no_grad():
        return anny(pose, anny.mean_shape()[None]).joints[0, anny.joint_names.index(name)]


def test_local_ref_axes_are_as_documented(anny):
    """reference/probe.md's claims, measured: X sagittal (+X bends the knee, -X flexes the hip,
    +X bends the spine forward), Y frontal (+Y adducts a left limb, -Y lifts the left clavicle),
    Z about the vertical (+Z turns the left leg's toes outward)."""
    zero = _pose(anny)
    a = 0.5
    foot0, knee0, neck0 = (_joint(anny, zero, n) for n in ("foot.L", "lowerleg01.L", "neck03"))
    # The body faces -Y: a flexed knee sends the foot back (+Y), a flexed hip the knee forward (-Y).
    assert _joint(anny, _pose(anny, lowerleg01_L=(a, 0, 0)), "foot.L")[1] - foot0[1] > 0.1
    assert _joint(anny, _pose(anny, upperleg01_L=(-a, 0, 0)), "lowerleg01.L")[1] - knee0[1] < -0.1
    assert _joint(anny, _pose(anny, spine03=(a, 0, 0)), "neck03")[1] - neck0[1] < -0.1
    # +Y moves the left knee towards the midline (-X); the mirrored pose moves the right one (+X).
    assert _joint(anny, _pose(anny, upperleg01_L=(0, a, 0)), "lowerleg01.L")[0] - knee0[0] < -0.1
    right = anny.mirror_pose(_pose(anny, upperleg01_L=(0, a, 0)))
    assert _joint(anny, right, "lowerleg01.R")[0] - _joint(anny, zero, "lowerleg01.R")[0] > 0.1
    # -Y lifts the left shoulder; +Y bends the spine to the left (+X).
    assert _joint(anny, _pose(anny, clavicle_L=(0, -a, 0)), "upperarm01.L")[2] > _joint(anny, zero, "upperarm01.L")[2] + 0.02
    assert _joint(anny, _pose(anny, spine03=(0, a, 0)), "neck03")[0] > 0.1
    # +Z on the left thigh turns the left foot's toes outward (+X): take the toe tip vertex.
    with torch.no_grad():
        v0 = anny(zero, anny.mean_shape()[None]).vertices[0]
        foot = torch.nonzero(anny.vertex_part == anny.joint_names.index("foot.L")).flatten()
        toe = foot[v0[foot, 1].argmin()]
        v1 = anny(_pose(anny, upperleg01_L=(0, 0, a)), anny.mean_shape()[None]).vertices[0]
    assert v1[toe, 0] - v0[toe, 0] > 0.03


def test_elbow_hinge_and_forearm_twist_axes(anny, prior):
    """The elbow bends about its own hinge axis (from the skeleton), not world X: flexion brings
    the wrist towards the shoulder; the forearm twist leaves the wrist where it is."""
    def span(theta):
        p = _pose(anny, lowerarm01_L=tuple(np.deg2rad(theta) * prior.elbow_axis))
        return torch.norm(_joint(anny, p, "wrist.L") - _joint(anny, p, "upperarm01.L")).item()
    assert span(-prior.elbow_rest) > span(0) > span(60) > span(100)
    p = _pose(anny, lowerarm02_L=tuple(np.deg2rad(70) * prior.forearm_axis))
    assert torch.allclose(_joint(anny, p, "wrist.L"), _joint(anny, _pose(anny), "wrist.L"), atol=1e-4)
    assert 30 < prior.elbow_rest < 55      # Anny's A-pose elbow (reference/anny.md: "slightly flexed")


def test_every_sampled_angle_is_inside_its_limit(anny, prior, samples):
    pose = samples.pose.astype(np.float64)
    lo, hi = prior.limits[..., 0], prior.limits[..., 1]
    eps = 1e-6                                              # float32 rounding of the clipped values
    outside = (pose < lo - eps) | (pose > hi + eps)
    assert not outside.any(), [anny.joint_names[j] for j in np.unique(np.nonzero(outside)[1])]
    assert np.all(pose[:, 0] == 0), "the root (global orientation) is not the prior's"
    # The limits shape the samples rather than clip them: every bone axis is clipped rarely.
    clipped = samples.clipped.mean(0)
    worst = np.unravel_index(clipped.argmax(), clipped.shape)
    assert clipped.max() < 0.02, (anny.joint_names[worst[0]], "XYZ"[worst[1]], clipped.max())
    # ...and the table is anatomical: knees bend one way, hips flex further than they extend.
    idx = anny.joint_names.index
    assert prior.limits_deg[idx("lowerleg01.L"), 0, 0] > -10 and prior.limits_deg[idx("lowerleg01.L"), 0, 1] >= 140
    assert -prior.limits_deg[idx("upperleg01.L"), 0, 0] > 3 * prior.limits_deg[idx("upperleg01.L"), 0, 1]
    assert set(LIMITS_DEG) <= set(anny.joint_names)


def test_limits_are_mirror_symmetric(anny, prior):
    L = prior.limits_deg
    for j, name in enumerate(anny.joint_names):
        m = int(anny.joint_mirror[j])
        np.testing.assert_allclose(L[m, 0], L[j, 0], err_msg=name)            # X kept
        np.testing.assert_allclose(L[m, 1:], -L[j, 1:, ::-1], err_msg=name)  # Y, Z negated


def _ks(a, b):
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return np.max(np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)))


def _asymmetry(anny, pose):
    """Largest KS statistic between each left bone's angles and its mirrored right counterpart's
    (and between each midline bone's Y/Z angles and their negation), and the number of tests.
    The two sides of each comparison come from disjoint halves of the samples, so that they are
    independent, as the two-sample test assumes (one body's left and right angles are not)."""
    sign = np.array([1.0, -1.0, -1.0])
    a, b = pose[: len(pose) // 2], pose[len(pose) // 2:]
    stats = []
    for j, name in enumerate(anny.joint_names):
        m = int(anny.joint_mirror[j])
        if name.endswith(".L"):
            for ax in range(3):
                stats.append(_ks(a[:, j, ax], sign[ax] * b[:, m, ax]))
        elif m == j and name != "root":
            for ax in (1, 2):
                stats.append(_ks(a[:, j, ax], -b[:, j, ax]))
    return max(stats), len(stats)


def test_prior_is_left_right_symmetric(anny, prior):
    """Mirrored samples have the same joint-angle distribution. Per bone and axis, a two-sample KS
    test at a family-wise alpha of 0.001 (Bonferroni over the tests): with two independent halves
    of n = 20000 samples each, the critical statistic is c(a) sqrt(2 / n), c(a) = sqrt(-ln(a / 2) / 2).
    The same test flags the prior with its mirroring switched off (left-handed reaching, left leg
    forward), so it has power."""
    n = 20000
    worst, tests = _asymmetry(anny, prior.sample(2 * n, np.random.default_rng(11)).pose)
    alpha = 0.001 / tests
    crit = np.sqrt(-np.log(alpha / 2) / 2) * np.sqrt(2 / n)
    assert worst < crit, (worst, crit)
    one_sided = prior.sample(2 * n, np.random.default_rng(7), mirror_prob=0.0)
    assert _asymmetry(anny, one_sided.pose)[0] > 3 * crit


def test_families_follow_their_weights_and_correlate(prior, samples):
    freq = np.bincount(samples.category, minlength=len(CATEGORIES)) / N
    se = np.sqrt(prior.weights * (1 - prior.weights) / N)
    assert np.all(np.abs(freq - prior.weights) < 5 * se)
    idx = {n: i for i, n in enumerate(prior.joint_names)}
    pose = np.degrees(samples.pose)
    sit = samples.category == CATEGORIES.index("sitting")
    hip = -0.5 * (pose[sit, idx["upperleg01.L"], 0] + pose[sit, idx["upperleg01.R"], 0])
    knee = 0.5 * (pose[sit, idx["lowerleg01.L"], 0] + pose[sit, idx["lowerleg01.R"], 0])
    assert hip.mean() > 60 and np.corrcoef(hip, knee)[0, 1] > 0.3        # sitting: hips and knees flex together
    walk = samples.category == CATEGORIES.index("walking")
    left, right = -pose[walk, idx["upperleg01.L"], 0], -pose[walk, idx["upperleg01.R"], 0]
    assert np.corrcoef(left, right)[0, 1] < -0.5                         # gait: legs in anti-phase


def test_category_weights_are_validated(anny):
    with pytest.raises(PriorError, match="mocap.categories"):
        PosePrior.from_model(anny, {"standing": 1.0, "cartwheel": 1.0})
    only = PosePrior.from_model(anny, {"sitting": 1.0})
    assert set(only.sample(200, np.random.default_rng(0)).category) == {CATEGORIES.index("sitting")}


def test_prior_needs_annys_rig():
    from uvhmr.body.joints import SMPL24_NAMES, mirror_permutation
    with pytest.raises(PriorError, match="mocap.source amass"):
        PosePrior(SMPL24_NAMES, mirror_permutation(SMPL24_NAMES), np.zeros((24, 3)))


def test_penetration_accepts_rest_and_rejects_crossed_legs(anny, check):
    shapes = torch.cat([anny.mean_shape()[None], anny.sample_shape(31, 5)])
    rest = anny.reference_pose(len(shapes))
    crossed = rest.clone()
    names = anny.joint_names
    crossed[:, names.index("upperleg01.L"), 1] = 0.45          # both thighs adducted 26 deg: the legs
    crossed[:, names.index("upperleg01.R"), 1] = -0.45         # pass through each other below the knees
    with torch.no_grad():
        for pose, expect in ((rest, False), (crossed, True)):
            out = anny(pose, shapes)
            bad = check(out.vertices, out.joints)
            assert bad.tolist() == [expect] * len(shapes), (expect, bad.sum().item())
        counts, _ = check.depths(out.vertices, out.joints)
    legs = [i for i, n in enumerate(check.pair_names) if n.split(">")[0][:-2] in ("thigh", "shin")]
    assert (counts[:, legs] >= check.min_vertices).any(1).all()


def test_prior_rarely_self_penetrates(anny, prior, check):
    """Rejection is a safety net, not the sampler: most prior poses pass."""
    s = prior.sample(512, np.random.default_rng(1))
    shapes = anny.sample_shape(512, 1)
    with torch.no_grad():
        bad = torch.cat([check(o.vertices, o.joints) for o in
                         (anny(torch.from_numpy(s.pose[i:i + 128]), shapes[i:i + 128]) for i in range(0, 512, 128))])
    assert 0.01 < bad.float().mean().item() < 0.3
