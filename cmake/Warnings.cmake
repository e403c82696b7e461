# Warnings and hardening for our own code (we check others' binaries for the same flags).
add_library(iotmark_options INTERFACE)
target_compile_options(iotmark_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  $<$<BOOL:${IOTMARK_WERROR}>:-Werror>)
if(NOT IOTMARK_SANITIZE AND NOT IOTMARK_FUZZ)
  target_compile_options(iotmark_options INTERFACE -fstack-protector-strong
    $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
  target_link_options(iotmark_options INTERFACE -Wl,-z,relro,-z,now)
endif()
if(IOTMARK_SANITIZE)
  target_compile_options(iotmark_options INTERFACE -fsanitize=address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(iotmark_options INTERFACE -fsanitize=address,undefined)
endif()
if(IOTMARK_FUZZ)
  target_compile_options(iotmark_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined
    -fno-omit-frame-pointer)
  target_link_options(iotmark_options INTERFACE -fsanitize=address,undefined)
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
