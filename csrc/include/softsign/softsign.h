// Everything a LibTorch user of softsign needs: the op API and the optimizers.
#pragma once

#include <softsign/ops.h>
#include <softsign/optim/lion.h>
#include <softsign/optim/soft_muon.h>
#include <softsign/optim/soft_signum.h>
