# memtrack_set_warnings(TARGET): the project's warning set; errors only when
# MEMTRACK_WARNINGS_AS_ERRORS is ON (CI), never by default for users.
function(memtrack_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
    -Wno-missing-field-initializers -Wnon-virtual-dtor -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
  if(MEMTRACK_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
