// Precompiled header: the heavy third-party headers every translation unit uses.
#pragma once
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <napi.h>
