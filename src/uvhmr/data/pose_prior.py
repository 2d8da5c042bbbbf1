"""A pose prior over Anny's 36-bone rig that needs no licensed data.

Convention (Anny's `local-ref` axis-angle; checked on the model, see tests/data/test_pose_prior.py):
each bone's rotation is about world-aligned axes at the bone's head, composed down the chain.
For a left (+X) limb or a midline bone:

  X (sagittal): +X bends the knee, -X flexes the hip and the shoulder forward, +X bends the spine
     and the neck forward, +X points the foot down (plantar flexion);
  Y (frontal):  +Y moves a left limb toward the midline (adduction), +Y bends the spine to the
     left, +Y inverts the left foot, -Y lifts the left clavicle;
  Z (vertical): +Z turns a left leg outward (external rotation) and the trunk to the left,
     +Z moves the left clavicle back (retraction).

The right side is the mirror image: a reflection through x = 0 maps a rotation vector (x, y, z) to
(x, -y, -z), so its limits are the left ones with Y and Z negated and swapped.

Sampling. A pose is drawn in anatomical terms (hip flexion, knee flexion, arm elevation, elbow
flexion about the elbow's own hinge axis, trunk flexion spread over the five spine bones, ...)
from one of eight everyday families (standing, walking, running, sitting, reaching, crouching,
lying, arms overhead); inside a family the angles are tied together (gait phase drives hips,
knees, ankles, arm swing and trunk counter-rotation; a sitting hip angle sets the knee and the
ankle; an elevated arm lifts its clavicle; a reaching arm leans and turns the trunk). The
anatomical angles are converted to local-ref rotation vectors, jittered, clipped to the joint
limits (`limits`, per bone and per axis), and each sample is left-right mirrored with
probability 1/2, so the prior is exactly symmetric. The root (global orientation) stays identity:
the dataset rule and train_ik sample it (`uvhmr.data.orientation`), upright for every family but
"lying", whose bodies that sampler lays down (trunk near horizontal, on the back, front or side).

`PenetrationCheck` rejects gross self-penetration: a pose is rejected when at least
`min_vertices` sampled vertices of one body part lie deeper than `depth` inside a non-adjacent part
(behind that part's nearest sampled surface vertex along its normal, and nearer to the part's
axis than that vertex). Adjacent parts are not checked (thigh and shin of one leg, thigh and
torso, forearm and upper arm), nor the shoulder half of the upper arm against the torso and the
crotch third of the thighs against each other: skinning folds those into each other at any deep
flexion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from uvhmr.errors import ConfigError

CATEGORIES = ("standing", "walking", "running", "sitting", "reaching", "crouching", "lying", "arms_overhead")

SPINE = ("spine05", "spine04", "spine03", "spine02", "spine01")         # bottom to top
SPINE_FLEX_WEIGHTS = (0.15, 0.20, 0.20, 0.20, 0.25)
NECK = ("neck01", "neck02", "neck03", "head")
NECK_WEIGHTS = (0.30, 0.20, 0.15, 0.35)

# Joint limits in degrees, ((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)) in local-ref axes, for the
# left side and the midline; `_derived_limits` adds the elbow hinge and forearm twist boxes.
LIMITS_DEG = {
    "root": ((0, 0), (0, 0), (0, 0)),                        # global orientation: not the prior's
    "pelvis.L": ((-8, 8), (-8, 8), (-8, 8)),
    "upperleg01.L": ((-130, 35), (-55, 35), (-45, 55)),      # hip: flexion 130, extension 35,
                                                             # abduction 55, adduction 35, rotation
    "upperleg02.L": ((-8, 8), (-8, 8), (-8, 8)),             # thigh twist bone: jitter only
    "lowerleg01.L": ((-8, 150), (-8, 8), (-20, 20)),         # knee: flexion 150, tibial rotation 20
    "lowerleg02.L": ((-8, 8), (-8, 8), (-8, 8)),
    "foot.L": ((-35, 55), (-30, 30), (-30, 30)),             # ankle: dorsiflexion 35, plantar 55
    **{b: ((-10, 25), (-12, 12), (-12, 12)) for b in SPINE},  # per spine bone (5 of them)
    "clavicle.L": ((-10, 10), (-35, 12), (-25, 25)),         # elevation 35, protraction/retraction 25
    "shoulder01.L": ((-10, 10), (-10, 10), (-10, 10)),
    # shoulder: a ball joint whose rest is Anny's A-pose (upper arm 48 deg below horizontal):
    # forward flexion to overhead needs about -150 on X, overhead abduction -130 on Y.
    "upperarm01.L": ((-175, 75), (-140, 75), (-95, 80)),
    "upperarm02.L": ((-8, 8), (-8, 8), (-8, 8)),
    "wrist.L": ((-50, 50), (-35, 35), (-35, 35)),
    "neck01": ((-25, 25), (-15, 15), (-25, 25)),
    "neck02": ((-20, 20), (-12, 12), (-20, 20)),
    "neck03": ((-15, 15), (-10, 10), (-15, 15)),
    "head": ((-30, 30), (-20, 20), (-35, 35)),
}
ELBOW_FLEXION_DEG = (0.0, 150.0)     # anatomical elbow flexion (0 = straight), about the hinge axis
FOREARM_TWIST_DEG = (-80.0, 80.0)    # pronation (+) / supination (-) from the rest pose
OFF_AXIS_DEG = 8.0                   # margin of the derived boxes for jitter off the hinge/twist axis
JITTER_DEG = 2.5                     # per-axis Gaussian jitter on every bone


class PriorError(ConfigError):
    """A prior that cannot work with these parameters (one line; the CLI prints it as such)."""


@dataclass
class PriorSample:
    pose: np.ndarray        # (n, J, 3) float32 local-ref axis-angle, root = 0
    category: np.ndarray    # (n,) int8 index into CATEGORIES
    mirrored: np.ndarray    # (n,) bool: drawn as the mirror image of the family's left-handed version
    clipped: np.ndarray     # (n, J, 3) bool: the component hit its limit


def _rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """Rotations by `deg` degrees (any shape) about coordinate axis `axis` (0, 1, 2; right-handed)
    -> (..., 3, 3) float64."""
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    v = np.zeros(a.shape + (3,))
    v[..., axis] = a
    return rotvec_to_matrix(v)


def rotvec_to_matrix(v: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle (radians) -> (..., 3, 3) (via roma, float64)."""
    return roma.rotvec_to_rotmat(torch.as_tensor(np.asarray(v, dtype=np.float64))).numpy()


def matrix_to_rotvec(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) axis-angle with angle in [0, pi] (via roma, float64)."""
    return roma.rotmat_to_rotvec(torch.as_tensor(np.asarray(R, dtype=np.float64))).numpy()


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a to unit vector b (3,) -> (3, 3)."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    return rotvec_to_matrix(axis / max(s, 1e-12) * np.arctan2(s, c))


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def mirror_limits(limits: np.ndarray, joint_mirror: np.ndarray) -> np.ndarray:
    """(J, 3, 2) limits of a pose -> limits of its mirror image ((x, y, z) -> (x, -y, -z))."""
    out = limits[joint_mirror].copy()
    out[:, 1:] = -out[:, 1:, ::-1]
    return out


class PosePrior:
    """Mixture of everyday pose families over Anny's rig, inside per-bone per-axis limits.

    Build with `PosePrior.from_model(model)`; draw with `sample(n, rng)` (numpy Generator).
    `limits` (J, 3, 2) radians; `limits_deg` the same in degrees.
    """

    def __init__(self, joint_names, joint_mirror, rest_joints: np.ndarray, weights: dict | None = None):
        self.joint_names = tuple(joint_names)
        self.index = {n: i for i, n in enumerate(self.joint_names)}
        missing = [b for b in LIMITS_DEG if b not in self.index]
        if missing:
            raise PriorError("the built-in pose prior is defined on Anny's 36-bone rig (anny-nohands-notoes-noeyes); "
                             f"this body model lacks bones {missing[:4]}... With body_model.backend smpl, use "
                             "mocap.source amass, aistpp or spin_fits")
        self.joint_mirror = np.asarray(joint_mirror, dtype=np.int64)
        J = np.asarray(rest_joints, dtype=np.float64)
        ix = self.index
        # The rest-pose geometry of the left arm, from the model itself.
        u = J[ix["lowerarm01.L"]] - J[ix["upperarm01.L"]]
        f = J[ix["wrist.L"]] - J[ix["lowerarm01.L"]]
        self.upperarm_rest = _unit(u)
        self.elbow_axis = _unit(np.cross(u, f))            # + rotation flexes the elbow
        self.elbow_rest = float(np.degrees(np.arccos(np.dot(_unit(u), _unit(f)))))
        self.forearm_axis = _unit(J[ix["wrist.L"]] - J[ix["lowerarm02.L"]])   # + rotation pronates
        self.down_from_rest = _swing(self.upperarm_rest, np.array([0.0, 0.0, -1.0]))
        w = dict(zip(CATEGORIES, (0.18, 0.18, 0.10, 0.14, 0.14, 0.10, 0.06, 0.10))) if weights is None else dict(weights)
        bad = [k for k in w if k not in CATEGORIES]
        if bad or any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
            raise PriorError(f"mocap.categories: expected non-negative weights over {', '.join(CATEGORIES)}, got {w}")
        p = np.array([float(w.get(c, 0.0)) for c in CATEGORIES])
        self.weights = p / p.sum()
        self.limits_deg = self._limits_deg()
        self.limits = np.deg2rad(self.limits_deg)

    @classmethod
    def from_model(cls, model, weights: dict | None = None) -> "PosePrior":
        with torch.no_grad():
            out = model(model.reference_pose(1).cpu(), model.mean_shape()[None].cpu())
        return cls(model.joint_names, model.joint_mirror.cpu().numpy(), out.joints[0].double().numpy(), weights)

    # ------------------------------------------------------------------ limits
    def _limits_deg(self) -> np.ndarray:
        L = np.zeros((len(self.joint_names), 3, 2))
        left = dict(LIMITS_DEG)
        left["lowerarm01.L"] = self._axis_box(self.elbow_axis, np.subtract(ELBOW_FLEXION_DEG, self.elbow_rest))
        left["lowerarm02.L"] = self._axis_box(self.forearm_axis, FOREARM_TWIST_DEG)
        for b, lim in left.items():
            L[self.index[b]] = np.asarray(lim, dtype=np.float64)
        right = mirror_limits(L, self.joint_mirror)
        for name, i in self.index.items():
            if name.endswith(".R"):
                L[i] = right[i]
        if (L[:, :, 0] > L[:, :, 1]).any():
            raise AssertionError("limits: a lower bound exceeds its upper bound")
        return L

    @staticmethod
    def _axis_box(axis: np.ndarray, deg_range) -> tuple:
        ends = np.outer(axis, np.asarray(deg_range, dtype=np.float64))   # (3, 2)
        return tuple((float(r.min() - OFF_AXIS_DEG), float(r.max() + OFF_AXIS_DEG)) for r in ends)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, rng: np.random.Generator, mirror_prob: float = 0.5) -> PriorSample:
        """n poses. Each family is drawn left-handed (a reaching left arm, a left leg in front) and
        mirrored with probability `mirror_prob` (0.5: an exactly left-right symmetric prior)."""
        cat = rng.choice(len(CATEGORIES), size=n, p=self.weights).astype(np.int8)
        P = _empty(n)
        for k, name in enumerate(CATEGORIES):
            idx = np.flatnonzero(cat == k)
            if len(idx):
                sub = getattr(_Families, name)(rng, len(idx))
                for key, v in sub.items():
                    P[key][idx] = v
        _derive_clavicle(P, rng)
        pose = self.assemble(P)
        pose[:, 1:] += np.deg2rad(JITTER_DEG) * rng.standard_normal(pose[:, 1:].shape)
        lo, hi = self.limits[None, ..., 0], self.limits[None, ..., 1]
        clipped = (pose < lo) | (pose > hi)
        pose = np.clip(pose, lo, hi)
        mirrored = rng.random(n) < mirror_prob
        pose[mirrored] = self.mirror(pose[mirrored])
        clipped[mirrored] = clipped[mirrored][:, self.joint_mirror]
        return PriorSample(pose.astype(np.float32), cat, mirrored, clipped)

    def mirror(self, pose: np.ndarray) -> np.ndarray:
        """(n, J, 3) -> the mirror-image poses (as BodyModel.mirror_pose, in numpy)."""
        return pose[:, self.joint_mirror] * np.array([1.0, -1.0, -1.0], dtype=pose.dtype)

    def assemble(self, P: dict) -> np.ndarray:
        """Anatomical angles (degrees; both sides in the left-side convention) -> (n, J, 3) radians."""
        n = len(P["trunk"])
        pose = np.zeros((n, len(self.joint_names), 3))
        ix = self.index
        d2r = np.deg2rad
        for i, b in enumerate(SPINE):
            pose[:, ix[b]] = d2r(P["trunk"] * np.array([SPINE_FLEX_WEIGHTS[i], 0.2, 0.2]))
        for i, b in enumerate(NECK):
            pose[:, ix[b]] = d2r(P["neck"] * NECK_WEIGHTS[i])
        mirror_sign = np.array([1.0, -1.0, -1.0])
        for s, side in enumerate(("L", "R")):
            sign = 1.0 if side == "L" else mirror_sign
            hip = P["hip"][:, s]
            legs = {
                "upperleg01": np.stack([-hip[:, 0], -hip[:, 1], hip[:, 2]], -1),
                "lowerleg01": np.stack([P["knee"][:, s], np.zeros(n), P["knee_rot"][:, s]], -1),
                "foot": np.stack([-P["ankle"][:, s, 0], P["ankle"][:, s, 1], P["ankle"][:, s, 2]], -1),
                "clavicle": np.stack([np.zeros(n), -P["clav"][:, s, 0], -P["clav"][:, s, 1]], -1),
                "wrist": P["wrist"][:, s],
            }
            for b, v in legs.items():
                pose[:, ix[f"{b}.{side}"]] = d2r(v) * sign
            pose[:, ix[f"upperarm01.{side}"]] = self._upperarm(P["arm"][:, s], P["humrot"][:, s],
                                                               pose[:, ix[f"clavicle.{side}"]] * sign) * sign
            pose[:, ix[f"lowerarm01.{side}"]] = d2r(P["elbow"][:, s] - self.elbow_rest)[:, None] * self.elbow_axis * sign
            pose[:, ix[f"lowerarm02.{side}"]] = d2r(P["pron"][:, s])[:, None] * self.forearm_axis * sign
        return pose

    def _upperarm(self, arm: np.ndarray, humrot: np.ndarray, clav_rotvec: np.ndarray) -> np.ndarray:
        """Left-side upper-arm rotation vectors: arm = (abduction, flexion) degrees of the arm's
        direction from hanging straight down, relative to the chest; humrot = internal rotation."""
        abd, flex = arm[:, 0], arm[:, 1]
        direction = np.stack([np.sin(np.deg2rad(abd)), -np.cos(np.deg2rad(abd)) * np.sin(np.deg2rad(flex)),
                              -np.cos(np.deg2rad(abd)) * np.cos(np.deg2rad(flex))], -1)
        target = _rot(0, -flex) @ _rot(1, -abd) @ self.down_from_rest
        twist = rotvec_to_matrix(direction * np.deg2rad(humrot)[:, None])
        R = np.swapaxes(rotvec_to_matrix(clav_rotvec), -1, -2) @ twist @ target
        return matrix_to_rotvec(R)


# ---------------------------------------------------------------------------------- families
# Each family returns anatomical angles in degrees for n samples; index 0 of the side axis is the
# left side, 1 the right (the whole pose is mirrored at random afterwards).

def _empty(n: int) -> dict:
    return {"hip": np.zeros((n, 2, 3)), "knee": np.zeros((n, 2)), "knee_rot": np.zeros((n, 2)),
            "ankle": np.zeros((n, 2, 3)), "arm": np.zeros((n, 2, 2)), "humrot": np.zeros((n, 2)),
            "elbow": np.zeros((n, 2)), "pron": np.zeros((n, 2)), "wrist": np.zeros((n, 2, 3)),
            "clav": np.zeros((n, 2, 2)), "trunk": np.zeros((n, 3)), "neck": np.zeros((n, 3))}


def _u(rng, lo, hi, shape):
    return rng.uniform(lo, hi, size=shape)


def _g(rng, mu, sd, shape):
    return mu + sd * rng.standard_normal(shape)


def _relaxed_arms(rng, n) -> dict:
    """Arms hanging or resting: hanging (most), hands on hips, arms folded, hands in front."""
    arm = np.stack([_u(rng, 10, 28, (n, 2)), _g(rng, 0, 12, (n, 2))], -1)
    humrot = _g(rng, 8, 12, (n, 2))
    elbow = _u(rng, 5, 45, (n, 2))
    style = rng.random(n)
    hips = style < 0.15
    k = int(hips.sum())
    arm[hips] = np.stack([_u(rng, 35, 55, (k, 2)), _u(rng, -15, 10, (k, 2))], -1)
    humrot[hips] = _u(rng, 20, 45, (k, 2))
    elbow[hips] = _u(rng, 85, 115, (k, 2))
    front = (style >= 0.15) & (style < 0.30)           # hands together in front of the belly
    k = int(front.sum())
    arm[front] = np.stack([_u(rng, 5, 20, (k, 2)), _u(rng, 10, 35, (k, 2))], -1)
    humrot[front] = _u(rng, 35, 60, (k, 2))
    elbow[front] = _u(rng, 70, 100, (k, 2))
    return {"arm": arm, "humrot": humrot, "elbow": elbow, "pron": _g(rng, 10, 25, (n, 2)),
            "wrist": _g(rng, 0, 10, (n, 2, 3))}


def _stand_legs(rng, n) -> dict:
    shift = _u(rng, -1, 1, n)                            # weight shift: one knee relaxed
    knee = np.stack([np.clip(shift, 0, None), np.clip(-shift, 0, None)], 1) * 18 + np.abs(_g(rng, 3, 3, (n, 2)))
    hipf = _g(rng, 0, 4, (n, 2)) + 0.4 * knee
    spread = _u(rng, 0, 12, n)[:, None] + _g(rng, 0, 2, (n, 2))
    hip = np.stack([hipf, spread, _g(rng, 6, 8, (n, 2))], -1)
    ankle = np.stack([knee - hipf + _g(rng, 0, 3, (n, 2)), _g(rng, 0, 4, (n, 2)), _g(rng, 0, 6, (n, 2))], -1)
    return {"hip": hip, "knee": knee, "knee_rot": _g(rng, 0, 4, (n, 2)), "ankle": ankle}


class _Families:
    @staticmethod
    def standing(rng, n):
        P = {**_stand_legs(rng, n), **_relaxed_arms(rng, n)}
        P["trunk"] = np.stack([_g(rng, 0, 5, n), _g(rng, 0, 4, n), _g(rng, 0, 8, n)], -1)
        P["neck"] = np.stack([_g(rng, 0, 12, n), _g(rng, 0, 6, n), _g(rng, 0, 20, n)], -1)
        return P

    @staticmethod
    def _gait(rng, n, run: bool):
        phase = _u(rng, 0, 2 * np.pi, n)[:, None] + np.array([0.0, np.pi])     # left, right
        amp = _u(rng, 32, 48, n)[:, None] if run else _u(rng, 15, 28, n)[:, None]
        hipf = (12 if run else 5) + amp * np.sin(phase)
        swing = np.clip(np.cos(phase - 0.3), 0, None) ** 2                     # swing leg: knee folds
        stance = np.clip(-np.cos(phase), 0, None)
        knee = (np.stack([_u(rng, 60, 110, n)] * 2, 1) if run else np.stack([_u(rng, 40, 65, n)] * 2, 1)) * swing \
            + (_u(rng, 15, 35, (n, 2)) if run else _u(rng, 3, 15, (n, 2))) * stance + 4
        hip = np.stack([hipf, _g(rng, 3, 3, (n, 2)), _g(rng, 6, 6, (n, 2))], -1)
        push = np.clip(-np.sin(phase), 0, None)                                 # toe-off: plantar flexion
        dorsi = 0.5 * (knee - hipf) - (25 if run else 12) * push + _g(rng, 0, 4, (n, 2))
        ankle = np.stack([np.clip(dorsi, -45, 30), _g(rng, 0, 3, (n, 2)), _g(rng, 0, 5, (n, 2))], -1)
        c = _u(rng, 0.6, 1.1, n)[:, None]
        armflex = -c * amp * np.sin(phase) * (1.0 if run else 0.8) + (10 if run else 0)  # opposite to the leg
        arm = np.stack([_u(rng, 12, 24, (n, 2)) + (4 if run else 0), armflex], -1)
        elbow = (_u(rng, 70, 105, (n, 2)) if run else _u(rng, 10, 35, (n, 2))) + np.clip(armflex, 0, None) * 0.3
        trunk = np.stack([_u(rng, 5, 18, n) if run else _g(rng, 3, 3, n), _g(rng, 0, 3, n),
                          -(12 if run else 6) * np.sin(phase[:, 0]) + _g(rng, 0, 3, n)], -1)
        neck = np.stack([_g(rng, -3 if run else 0, 6, n), _g(rng, 0, 4, n), _g(rng, 0, 10, n)], -1)
        return {"hip": hip, "knee": knee, "knee_rot": _g(rng, 0, 3, (n, 2)), "ankle": ankle, "arm": arm,
                "humrot": _g(rng, 0 if run else 5, 10, (n, 2)), "elbow": elbow, "pron": _g(rng, 10, 20, (n, 2)),
                "wrist": _g(rng, 0, 8, (n, 2, 3)), "trunk": trunk, "neck": neck}

    @staticmethod
    def walking(rng, n):
        return _Families._gait(rng, n, run=False)

    @staticmethod
    def running(rng, n):
        return _Families._gait(rng, n, run=True)

    @staticmethod
    def sitting(rng, n):
        base = _u(rng, 70, 100, n)[:, None]
        hipf = base + _g(rng, 0, 7, (n, 2))
        knee = np.clip(base + _g(rng, 0, 15, (n, 2)), 50, 125)
        stretch = rng.random(n) < 0.2                       # one leg stretched out
        knee[stretch, 1] = _u(rng, 5, 40, int(stretch.sum()))
        spread = _u(rng, 0, 20, n)[:, None] + _g(rng, 0, 4, (n, 2))
        hip = np.stack([hipf, spread, _g(rng, 8, 10, (n, 2))], -1)
        ankle = np.stack([np.clip(knee - hipf + _g(rng, 0, 8, (n, 2)), -45, 30), _g(rng, 0, 5, (n, 2)),
                          _g(rng, 0, 8, (n, 2))], -1)
        style = rng.random(n)
        arm = np.stack([_u(rng, 10, 25, (n, 2)), _u(rng, 25, 45, (n, 2))], -1)    # hands on the lap
        humrot = _u(rng, 10, 35, (n, 2))
        elbow = _u(rng, 50, 80, (n, 2))
        rest = style < 0.3                                   # forearms on armrests
        k = int(rest.sum())
        arm[rest] = np.stack([_u(rng, 15, 28, (k, 2)), _u(rng, -5, 15, (k, 2))], -1)
        humrot[rest] = _u(rng, -5, 15, (k, 2))
        elbow[rest] = _u(rng, 75, 100, (k, 2))
        desk = (style >= 0.3) & (style < 0.55)               # hands on a desk / keyboard
        k = int(desk.sum())
        arm[desk] = np.stack([_u(rng, 10, 25, (k, 2)), _u(rng, 25, 55, (k, 2))], -1)
        humrot[desk] = _u(rng, 5, 30, (k, 2))
        elbow[desk] = _u(rng, 80, 115, (k, 2))
        trunk = np.stack([_u(rng, -10, 25, n), _g(rng, 0, 4, n), _g(rng, 0, 8, n)], -1)
        neck = np.stack([_g(rng, 5, 12, n), _g(rng, 0, 6, n), _g(rng, 0, 20, n)], -1)
        return {"hip": hip, "knee": knee, "knee_rot": _g(rng, 0, 5, (n, 2)), "ankle": ankle, "arm": arm,
                "humrot": humrot, "elbow": elbow, "pron": _g(rng, 30, 25, (n, 2)),
                "wrist": _g(rng, 0, 12, (n, 2, 3)), "trunk": trunk, "neck": neck}

    @staticmethod
    def reaching(rng, n):
        P = {**_stand_legs(rng, n), **_relaxed_arms(rng, n)}
        # The left arm reaches: forward, sideways, up or across the body.
        abd = _u(rng, -25, 85, n)
        flex = _u(rng, 25, 165, n)
        P["arm"][:, 0] = np.stack([abd, flex], -1)
        P["humrot"][:, 0] = _g(rng, 0, 20, n)
        P["elbow"][:, 0] = _u(rng, 0, 40, n)
        P["pron"][:, 0] = _g(rng, 20, 30, n)
        lunge = rng.random(n) < 0.3                           # a step toward the target
        k = int(lunge.sum())
        P["hip"][lunge, 0, 0] = _u(rng, 20, 45, k)
        P["knee"][lunge, 0] = _u(rng, 20, 55, k)
        P["hip"][lunge, 1, 0] = _u(rng, -15, 0, k)
        P["ankle"][lunge, 0, 0] = P["knee"][lunge, 0] - P["hip"][lunge, 0, 0]
        P["ankle"][lunge, 1, 0] = _u(rng, 0, 15, k)
        high = flex > 140                                     # reaching up: on tiptoe
        tip = high & (rng.random(n) < 0.4)
        P["ankle"][tip, :, 0] = -_u(rng, 15, 35, (int(tip.sum()), 2))
        forward = np.clip(np.sin(np.deg2rad(flex)), 0, None) * np.cos(np.deg2rad(abd))
        P["trunk"] = np.stack([_u(rng, 0, 40, n) * forward - 8 * high, 0.12 * np.clip(abd - 30, 0, None) + _g(rng, 0, 3, n),
                               0.25 * (abd - 20) + _g(rng, 0, 6, n)], -1)
        P["neck"] = np.stack([_g(rng, -5, 10, n) - 12 * high, _g(rng, 0, 5, n), 0.2 * (abd - 20) + _g(rng, 0, 12, n)], -1)
        return P

    @staticmethod
    def crouching(rng, n):
        deep = _u(rng, 0, 1, n)[:, None]
        hipf = 90 + 32 * deep + _g(rng, 0, 5, (n, 2))
        knee = np.clip(105 + 38 * deep + _g(rng, 0, 5, (n, 2)), 60, 148)
        spread = _u(rng, 8, 35, n)[:, None] + _g(rng, 0, 4, (n, 2))
        hip = np.stack([hipf, spread, _u(rng, 5, 25, (n, 2))], -1)
        ankle = np.stack([np.clip(knee - hipf + _g(rng, 0, 5, (n, 2)), -10, 32), _g(rng, 0, 5, (n, 2)),
                          _g(rng, 8, 6, (n, 2))], -1)
        kneel = rng.random(n) < 0.3                          # kneeling on the right knee
        k = int(kneel.sum())
        hip[kneel, 0, 0] = _u(rng, 70, 100, k)
        knee[kneel, 0] = _u(rng, 80, 105, k)
        ankle[kneel, 0, 0] = knee[kneel, 0] - hip[kneel, 0, 0]
        hip[kneel, 1, 0] = _u(rng, -10, 15, k)
        hip[kneel, 1, 1] = _u(rng, 0, 10, k)
        knee[kneel, 1] = _u(rng, 85, 120, k)
        ankle[kneel, 1, 0] = -_u(rng, 10, 35, k)
        arm = np.stack([_u(rng, 10, 35, (n, 2)), _u(rng, 40, 90, (n, 2))], -1)
        trunk = np.stack([_u(rng, 15, 55, n), _g(rng, 0, 5, n), _g(rng, 0, 8, n)], -1)
        neck = np.stack([_g(rng, -15, 10, n), _g(rng, 0, 5, n), _g(rng, 0, 15, n)], -1)
        return {"hip": hip, "knee": knee, "knee_rot": _g(rng, 0, 5, (n, 2)), "ankle": ankle, "arm": arm,
                "humrot": _u(rng, 5, 40, (n, 2)), "elbow": _u(rng, 20, 100, (n, 2)), "pron": _g(rng, 20, 25, (n, 2)),
                "wrist": _g(rng, 0, 12, (n, 2, 3)), "trunk": trunk, "neck": neck}

    @staticmethod
    def lying(rng, n):
        """Limb configurations of a lying body, stretched out or curled up. They are drawn in the
        body frame (upright, root identity): `uvhmr.data.orientation` lays rows of this family
        down (its `lying` rows) on the back, the front or a side; not on the front when the
        knees are drawn up."""
        curled = rng.random(n) < 0.4
        c = curled[:, None]
        hipf = np.where(c, _u(rng, 30, 95, n)[:, None] + _g(rng, 0, 10, (n, 2)), _g(rng, 0, 8, (n, 2)))
        knee = np.where(c, np.clip(hipf + _g(rng, 10, 20, (n, 2)), 10, 140), _u(rng, 0, 25, (n, 2)))
        hip = np.stack([hipf, np.where(c, _g(rng, 0, 6, (n, 2)), _u(rng, 0, 20, (n, 2))), _g(rng, 15, 12, (n, 2))], -1)
        ankle = np.stack([-_u(rng, 5, 35, (n, 2)), _g(rng, 0, 6, (n, 2)), _g(rng, 5, 8, (n, 2))], -1)
        style = rng.random(n)
        arm = np.stack([_u(rng, 5, 30, (n, 2)), _g(rng, 0, 10, (n, 2))], -1)           # along the body
        spread = style < 0.3
        k = int(spread.sum())
        arm[spread] = np.stack([_u(rng, 40, 110, (k, 2)), _g(rng, 0, 15, (k, 2))], -1)
        over = (style >= 0.3) & (style < 0.5)
        k = int(over.sum())
        arm[over] = np.stack([_u(rng, 0, 40, (k, 2)), _u(rng, 140, 178, (k, 2))], -1)
        arm[curled] = np.stack([_u(rng, 0, 25, (int(curled.sum()), 2)), _u(rng, 40, 100, (int(curled.sum()), 2))], -1)
        trunk = np.stack([np.where(curled, _u(rng, 10, 45, n), _g(rng, 0, 5, n)), _g(rng, 0, 5, n), _g(rng, 0, 8, n)], -1)
        neck = np.stack([np.where(curled, _u(rng, 0, 30, n), _g(rng, 0, 8, n)), _g(rng, 0, 8, n), _g(rng, 0, 25, n)], -1)
        return {"hip": hip, "knee": knee, "knee_rot": _g(rng, 0, 5, (n, 2)), "ankle": ankle, "arm": arm,
                "humrot": _g(rng, 5, 20, (n, 2)), "elbow": _u(rng, 5, 100, (n, 2)), "pron": _g(rng, 0, 30, (n, 2)),
                "wrist": _g(rng, 0, 12, (n, 2, 3)), "trunk": trunk, "neck": neck}

    @staticmethod
    def arms_overhead(rng, n):
        P = _stand_legs(rng, n)
        side = rng.random(n) < 0.4                            # raised sideways rather than forward
        both = rng.random(n) < 0.75                           # otherwise only the left arm is up
        arm = np.stack([_u(rng, 0, 30, (n, 2)), _u(rng, 135, 178, (n, 2))], -1)
        k = int(side.sum())
        arm[side] = np.stack([_u(rng, 100, 165, (k, 2)), _u(rng, -10, 20, (k, 2))], -1)
        elbow = _u(rng, 0, 35, (n, 2))
        behind = rng.random(n) < 0.25                         # hands behind the head
        k = int(behind.sum())
        arm[behind] = np.stack([_u(rng, 70, 110, (k, 2)), _u(rng, 60, 100, (k, 2))], -1)
        elbow[behind] = _u(rng, 110, 140, (k, 2))
        humrot = _g(rng, 0, 15, (n, 2))
        humrot[behind] = _u(rng, -60, -30, (k, 2))            # externally rotated
        lone = ~both
        relaxed = _relaxed_arms(rng, n)
        arm[lone, 1] = relaxed["arm"][lone, 1]
        elbow[lone, 1] = relaxed["elbow"][lone, 1]
        humrot[lone, 1] = relaxed["humrot"][lone, 1]
        P.update({"arm": arm, "humrot": humrot, "elbow": elbow, "pron": _g(rng, 0, 30, (n, 2)),
                  "wrist": _g(rng, 0, 12, (n, 2, 3))})
        P["trunk"] = np.stack([_u(rng, -15, 3, n), _g(rng, 0, 5, n) + 4 * lone, _g(rng, 0, 6, n)], -1)
        P["neck"] = np.stack([_g(rng, -10, 10, n), _g(rng, 0, 5, n), _g(rng, 0, 12, n)], -1)
        return P


def _derive_clavicle(P: dict, rng) -> None:
    """Shoulder rhythm: the clavicle rises with arm elevation above 60 deg and protracts with
    forward flexion (then the upper arm is solved for the same direction, see `_upperarm`)."""
    abd, flex = np.deg2rad(P["arm"][..., 0]), np.deg2rad(P["arm"][..., 1])
    down = np.cos(abd) * np.cos(flex)                         # -z component of the arm direction
    elevation = np.degrees(np.arccos(np.clip(down, -1, 1)))   # 0: hanging, 180: straight up
    forward = np.cos(abd) * np.sin(flex)
    n = len(down)
    P["clav"] = np.stack([0.22 * np.clip(elevation - 60, 0, None) + _g(rng, 0, 3, (n, 2)),
                          12 * np.clip(forward, 0, None) + _g(rng, 0, 4, (n, 2))], -1)


# ---------------------------------------------------------------------------------- penetration

# Body parts as groups of Anny bones (by each vertex's dominant skinning bone).
PARTS = {
    "head": ("head", "neck02", "neck03"),
    "torso": ("spine05", "spine04", "spine03", "spine02", "spine01", "pelvis.L", "pelvis.R"),
    **{f"{p}.{s}": tuple(f"{b}.{s}" for b in bones) for s in "LR" for p, bones in (
        ("uarm", ("upperarm01", "upperarm02")), ("farm", ("lowerarm01", "lowerarm02")), ("hand", ("wrist",)),
        ("thigh", ("upperleg01", "upperleg02")), ("shin", ("lowerleg01", "lowerleg02")), ("foot", ("foot",)))},
}
# (query part, surface part, distal fraction): vertices of the query part (beyond that fraction
# of its length from its proximal end) must not lie deep inside the surface part.
_LEFT_PAIRS = [
    ("uarm.L", "torso", 0.5), ("farm.L", "torso", 0), ("hand.L", "torso", 0),
    ("uarm.L", "head", 0), ("farm.L", "head", 0), ("hand.L", "head", 0),
    ("farm.L", "thigh.L", 0), ("hand.L", "thigh.L", 0), ("farm.L", "thigh.R", 0), ("hand.L", "thigh.R", 0),
    ("farm.L", "shin.L", 0), ("hand.L", "shin.L", 0), ("farm.L", "shin.R", 0), ("hand.L", "shin.R", 0),
    ("farm.L", "farm.R", 0), ("hand.L", "farm.R", 0), ("farm.L", "uarm.R", 0), ("hand.L", "uarm.R", 0),
    ("hand.L", "uarm.L", 0),
    ("thigh.L", "thigh.R", 0.35), ("shin.L", "shin.R", 0), ("shin.L", "thigh.R", 0), ("foot.L", "shin.R", 0),
    ("foot.L", "thigh.R", 0), ("foot.L", "foot.R", 0), ("shin.L", "torso", 0), ("foot.L", "torso", 0),
    ("foot.L", "head", 0), ("shin.L", "head", 0),
]


def _mirror_part(p: str) -> str:
    return p[:-1] + {"L": "R", "R": "L"}[p[-1]] if p[-2:] in (".L", ".R") else p


PAIRS = sorted(set(_LEFT_PAIRS) | {(_mirror_part(a), _mirror_part(b), t) for a, b, t in _LEFT_PAIRS})
if len({(a, b) for a, b, _ in PAIRS}) != len(PAIRS):
    raise AssertionError("PAIRS: one distal fraction per pair")
# Each part's axis: a polyline through bone heads (and, for the head and the feet, the vertex
# farthest from the first bone head: the top of the head, the toe tip).
PART_AXIS = {
    "head": ("neck02", "head", None), "torso": ("spine05", "spine03", "spine01", "neck01"),
    **{f"{p}.{s}": tuple(f"{b}.{s}" if b else None for b in bones) for s in "LR" for p, bones in (
        ("uarm", ("upperarm01", "lowerarm01")), ("farm", ("lowerarm01", "wrist")), ("hand", ("wrist", None)),
        ("thigh", ("upperleg01", "lowerleg01")), ("shin", ("lowerleg01", "foot")), ("foot", ("foot", None)))},
}
PROXIMAL_BONE = {"uarm": "upperarm01", "farm": "lowerarm01", "hand": "wrist", "thigh": "upperleg01",
                 "shin": "lowerleg01", "foot": "foot"}
QUERY_PER_PART = 48
SURFACE_PER_PART = 128
SURFACE_TORSO = 256


class PenetrationCheck:
    """Gross self-penetration on posed vertices (B, V, 3) -> reject mask (B,) and depths.

    For each checked pair (A, B) a fixed subset of A's vertices is tested against B's surface. A
    query vertex is inside B by `d` metres when it lies `d` behind B's nearest sampled surface
    vertex (along that vertex's outward normal) and `d` nearer to B's axis than that vertex is
    (each test alone is fooled far from the part, at its open ends). A pose is rejected when, for
    some pair, `min_vertices` query vertices lie deeper than `depth`. A broad phase (part axes
    farther apart than the sum of the parts' radii, over a spread of body shapes) skips distant
    pairs, and only query vertices nearer to B's axis than B's radius are searched.
    """

    def __init__(self, model, depth: float = 0.02, min_vertices: int = 2, seed: int = 0):
        self.depth, self.min_vertices = float(depth), int(min_vertices)
        names = list(model.joint_names)
        need = {b for bones in PARTS.values() for b in bones}
        if not need <= set(names):
            raise PriorError("the self-penetration check is defined on Anny's 36-bone rig; this body model "
                             f"lacks {sorted(need - set(names))[:4]}")
        part = model.vertex_part.cpu().numpy()
        faces = model.faces.cpu().numpy()
        shapes = torch.cat([model.mean_shape()[None].cpu(), model.sample_shape(31, seed).cpu()])
        with torch.no_grad():
            ref = model(model.reference_pose(len(shapes)).cpu(), shapes)
        rv, rj = ref.vertices[0].double().numpy(), ref.joints[0].double().numpy()
        rng = np.random.default_rng(seed)
        members = {p: np.flatnonzero(np.isin(part, [names.index(b) for b in bones])) for p, bones in PARTS.items()}
        # Axis of every part: (is_vertex, index) points.
        self.axis = {}
        for p in PARTS:
            pts = []
            for b in PART_AXIS[p]:
                if b is None:
                    start = rj[names.index(PART_AXIS[p][0])]
                    pts.append((1, int(members[p][np.argmax(np.linalg.norm(rv[members[p]] - start, axis=1))])))
                else:
                    pts.append((0, names.index(b)))
            self.axis[p] = torch.as_tensor(pts)
        # A part's radius: the 95th percentile of its vertices' distances from its axis, over the
        # shapes, with a margin for posing. (The largest distances are at the joints' bulges, the
        # buttocks and the shoulder: a penetration that deep is also nearer the axis elsewhere.)
        self.radius = {p: 1.15 * float(torch.quantile(_polyline_distance(
            ref.vertices[:, members[p]].float(), self._axis_points(p, ref.vertices, ref.joints)).flatten(), 0.95))
            for p in PARTS}
        # Surface samples with their incident faces (normals), query samples per (part, distal fraction).
        self.surface, self.surface_faces, queries = {}, {}, {}
        for p in sorted({b for _, b, _ in PAIRS}):
            idx = _spread(rv, members[p], SURFACE_TORSO if p == "torso" else SURFACE_PER_PART, rng)
            self.surface[p] = torch.as_tensor(idx)
            self.surface_faces[p] = torch.as_tensor(_incident_faces(faces, idx))
        fn = np.cross(rv[faces[:, 1]] - rv[faces[:, 0]], rv[faces[:, 2]] - rv[faces[:, 0]])
        vnorm = np.zeros_like(rv)
        np.add.at(vnorm, faces.reshape(-1), np.repeat(fn, 3, axis=0))
        outward = np.sum(vnorm * (rv - rv.mean(0)), 1) > 0
        self.flip = -1.0 if outward.mean() < 0.5 else 1.0       # faces wound inward: flip normals
        self.pairs = []
        for a, b, t in PAIRS:
            if (a, t) not in queries:
                idx = members[a]
                if t > 0:
                    stem, side = a.split(".")
                    head = rj[names.index(f"{PROXIMAL_BONE[stem]}.{side}")]
                    end = rv[idx][np.argmax(np.linalg.norm(rv[idx] - head, axis=1))]
                    along = (rv[idx] - head) @ (end - head) / np.sum((end - head) ** 2)
                    idx = idx[along >= t]
                queries[(a, t)] = torch.as_tensor(_spread(rv, idx, QUERY_PER_PART, rng))
            self.pairs.append((a, b, queries[(a, t)]))
        self.pair_names = [f"{a}>{b}" for a, b, _ in self.pairs]
        # Padded per-pair tables, so that every near (sample, pair) is checked in one batched pass.
        s_max = max(len(x) for x in self.surface.values())
        q_max = max(len(q) for _, _, q in self.pairs)
        self.pair_query = torch.stack([torch.cat([q, q[:1].expand(q_max - len(q))]) for _, _, q in self.pairs])
        self.pair_query_valid = torch.stack([torch.arange(q_max) < len(q) for _, _, q in self.pairs])
        pad = {p: (torch.arange(s_max) % len(x)) for p, x in self.surface.items()}   # repeat to fill
        self.pair_surface = torch.stack([self.surface[b][pad[b]] for _, b, _ in self.pairs])
        self.pair_faces = torch.stack([self.surface_faces[b][pad[b]] for _, b, _ in self.pairs])
        names_ = list(PARTS)
        self.pair_a = torch.as_tensor([names_.index(a) for a, _, _ in self.pairs])
        self.pair_b = torch.as_tensor([names_.index(b) for _, b, _ in self.pairs])
        self.pair_reach = torch.as_tensor([self.radius[a] + self.radius[b] for a, b, _ in self.pairs])
        self.pair_radius_a = torch.as_tensor([self.radius[a] for a, _, _ in self.pairs])

    def _axis_points(self, p: str, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        ax = self.axis[p].to(vertices.device)
        is_vertex = ax[:, 0].bool()
        return torch.where(is_vertex[None, :, None], vertices[:, torch.where(is_vertex, ax[:, 1], 0)],
                           joints[:, torch.where(is_vertex, 0, ax[:, 1])]).float()

    def _lines(self, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """(B, parts, W, 3) every part's axis, padded to W points by repeating its last point."""
        width = max(len(a) for a in self.axis.values())
        out = []
        for p in PARTS:
            pts = self._axis_points(p, vertices, joints)
            out.append(torch.cat([pts, pts[:, -1:].expand(-1, width - pts.shape[1], -1)], 1))
        return torch.stack(out, 1)

    def depths(self, vertices: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed vertices (B, V, 3) and rig joints (B, J, 3) -> (deep-vertex count per pair (B, P),
        deepest penetration per sample (B,) metres; 0 where no pair is near)."""
        v, joints = vertices.float(), joints.float()
        dev, nb, npair = v.device, v.shape[0], len(self.pairs)
        ia, ib = self.pair_a.to(dev), self.pair_b.to(dev)
        lines = self._lines(v, joints)                                          # (B, parts, W, 3)
        # Broad phase: points along A's axis against B's axis, within the sum of the radii.
        t = torch.linspace(0, 1, 5, device=dev)[:, None]
        pts = (lines[:, :, :-1, None] * (1 - t) + lines[:, :, 1:, None] * t).flatten(2, 3)
        step = (lines[:, :, 1:] - lines[:, :, :-1]).norm(dim=-1).amax(-1) / 8   # (B, parts)
        d = _polyline_distance(pts[:, ia].flatten(0, 1), lines[:, ib].flatten(0, 1)).min(-1).values.view(nb, npair)
        near = d < self.pair_reach.to(dev) + step[:, ia]
        counts = torch.zeros(nb, npair, dtype=torch.int64, device=dev)
        deepest = torch.zeros(nb, device=dev)
        sample, pair = torch.nonzero(near, as_tuple=True)
        if len(sample) == 0:
            return counts, deepest
        # Narrow phase on every near (sample, pair) at once. Only a query vertex nearer to B's axis
        # than B's largest radius can be inside B: the rest are dropped before the nearest-vertex search.
        qv = v[sample[:, None], self.pair_query.to(dev)[pair]]                  # (N, Q, 3)
        axis = lines[sample, ib[pair]]                                          # (N, W, 3)
        rq = _polyline_distance(qv, axis)                                       # (N, Q)
        radius_b = self.pair_reach.to(dev)[pair] - self.pair_radius_a.to(dev)[pair]
        cand = (rq < radius_b[:, None] - self.depth) & self.pair_query_valid.to(dev)[pair]
        n_i, q_i = torch.nonzero(cand, as_tuple=True)
        if len(n_i) == 0:
            return counts, deepest
        q = qv[n_i, q_i]                                                        # (M, 3)
        smp, pr = sample[n_i], pair[n_i]
        sv = v[smp[:, None], self.pair_surface.to(dev)[pr]]                     # (M, S, 3)
        nearest = ((sv - q[:, None]) ** 2).sum(-1).argmin(-1)                   # (M,)
        pv = sv[torch.arange(len(q), device=dev), nearest]                      # (M, 3)
        inc = self.pair_faces.to(dev)[pr, nearest]                              # (M, K, 3)
        tri = v[smp[:, None, None], inc]                                        # (M, K, 3, 3)
        n = torch.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :], dim=-1).sum(1)
        n = self.flip * n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        radial = _polyline_distance(pv[:, None], axis[n_i])[:, 0] - rq[n_i, q_i]
        depth = torch.minimum(-((q - pv) * n).sum(-1), radial)                  # (M,), > 0 inside
        deep = torch.zeros(nb * npair, dtype=torch.int64, device=dev)
        deep.index_add_(0, smp * npair + pr, (depth > self.depth).long())
        counts = deep.view(nb, npair)
        deepest.scatter_reduce_(0, smp, depth, reduce="amax")
        return counts, deepest

    def __call__(self, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """Posed vertices (B, V, 3), rig joints (B, J, 3) -> (B,) bool, True where the pose
        self-penetrates grossly."""
        counts, _ = self.depths(vertices, joints)
        return (counts >= self.min_vertices).any(1)


def _polyline_distance(p: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
    """Points (B, N, 3), polyline (B, A, 3) -> (B, N) distance from each point to the polyline."""
    a, b = line[:, :-1], line[:, 1:]                                    # (B, A-1, 3)
    ab = b - a
    ap = p[:, :, None] - a[:, None]                                     # (B, N, A-1, 3)
    t = ((ap * ab[:, None]).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)[:, None]).clamp(0, 1)
    return (ap - t[..., None] * ab[:, None]).norm(dim=-1).min(-1).values


def _spread(points: np.ndarray, idx: np.ndarray, k: int, rng) -> np.ndarray:
    """Up to k of `idx`, spread over the part (farthest-point sampling from a random start)."""
    idx = np.asarray(idx)
    if len(idx) <= k:
        return idx.copy()
    p = points[idx]
    chosen = [int(rng.integers(len(idx)))]
    d = np.linalg.norm(p - p[chosen[0]], axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(d))
        chosen.append(j)
        d = np.minimum(d, np.linalg.norm(p - p[j], axis=1))
    return idx[np.sort(chosen)]


def _incident_faces(faces: np.ndarray, idx: np.ndarray, k: int = 4) -> np.ndarray:
    """(S, k, 3) up to k faces around each vertex of idx, each rotated to start at that vertex
    (repeated to fill k), for area-weighted vertex normals."""
    corner_face = np.repeat(np.arange(len(faces)), 3)
    corner_vertex = faces.reshape(-1)
    corner_pos = np.tile(np.arange(3), len(faces))
    order = np.argsort(corner_vertex, kind="stable")
    starts = np.searchsorted(corner_vertex[order], idx)
    ends = np.searchsorted(corner_vertex[order], idx, side="right")
    out = np.zeros((len(idx), k, 3), dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts, ends)):
        if b == a:
            raise PriorError(f"vertex {idx[i]} belongs to no face")
        sel = order[a:b][:k]
        rows = [np.roll(faces[corner_face[c]], -corner_pos[c]) for c in sel]
        out[i] = np.asarray((rows * k)[:k])
    return out
