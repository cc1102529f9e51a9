/**
 * @file memtrack.hpp
 * @brief Umbrella header: everything in memtrack's core.
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/error.hpp>
#include <memtrack/fraction.hpp>
#include <memtrack/gpu_config.hpp>
#include <memtrack/memory_tracker.hpp>
#include <memtrack/observer.hpp>
#include <memtrack/result.hpp>
#include <memtrack/shared_memory_tracker.hpp>
#include <memtrack/units.hpp>
