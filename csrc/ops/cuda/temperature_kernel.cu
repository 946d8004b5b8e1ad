// Registers the CUDA kernel of the temperature ops (temperature_kernel.cuh).
#include <torch/library.h>

#include <type_traits>

#include "temperature_kernel.cuh"

// Note [one signature per op].
static_assert(std::is_same_v<decltype(softsign::ops::temperature_schedule_entry<
                                      &softsign::ops::temperature_range_launch<>>),
                             softsign::ops::sig::TemperatureSchedule>);
static_assert(
    std::is_same_v<
        decltype(softsign::ops::temperature_at_entry<&softsign::ops::temperature_range_launch<>>),
        softsign::ops::sig::TemperatureAt>);

TORCH_LIBRARY_IMPL(softsign, CUDA, m) {
  m.impl("temperature_schedule",
         &softsign::ops::temperature_schedule_entry<&softsign::ops::temperature_range_launch<>>);
  m.impl("temperature_at",
         &softsign::ops::temperature_at_entry<&softsign::ops::temperature_range_launch<>>);
}
