from .soft_signum import Signum, SoftSignum

__all__ = ["Signum", "SoftSignum"]
