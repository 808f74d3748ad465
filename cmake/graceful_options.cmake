# Compiler options for graceful's own targets only (PRIVATE): consumers of the
# installed package never inherit warnings or sanitizers.
set(GRACEFUL_SANITIZE "" CACHE STRING
    "Sanitizers for graceful's own targets, as for -fsanitize= (e.g. address,undefined or thread)")

function(graceful_configure_target target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(GRACEFUL_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
    return()
  endif()
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wconversion -Wsign-conversion -Wdouble-promotion
    -Wimplicit-fallthrough)
  if(GRACEFUL_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(GRACEFUL_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${GRACEFUL_SANITIZE}
      -fno-omit-frame-pointer -fno-sanitize-recover=all)
    get_target_property(type ${target} TYPE)
    if(NOT type STREQUAL "STATIC_LIBRARY")
      target_link_options(${target} PRIVATE -fsanitize=${GRACEFUL_SANITIZE})
    endif()
  endif()
endfunction()
