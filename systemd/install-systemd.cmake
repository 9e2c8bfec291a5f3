# install-systemd.cmake - run by `cmake --install` (install(SCRIPT) in
# systemd/CMakeLists.txt), after the install(CODE) that sets UM_SD_*.
#
# Runs at install time because only then is the prefix known: `cmake
# --install --prefix P` replaces CMAKE_INSTALL_PREFIX here, not in the
# configured tree. Every file goes under that prefix (file(INSTALL) adds
# DESTDIR), unless its directory was configured absolute, or
# UMIRROR_SYSTEMD_SYSTEM_DIRS named a system directory and the prefix is
# /usr. The service's ExecStart names the umirrord this same install puts
# into the prefix's sbin.
#
# UM_SD_FILES: "SOURCE|KIND|NAME" per file; KIND selects UM_SD_DIR_<KIND>
# (relative to the prefix, or absolute) and UM_SD_SYS_<KIND> (the system
# directory, or empty).

string(REGEX REPLACE "(.)/+$" "\\1" um_prefix "${CMAKE_INSTALL_PREFIX}")

if(IS_ABSOLUTE "${UM_SD_SBINDIR}")
  set(um_daemon "${UM_SD_SBINDIR}/umirrord")
else()
  set(um_daemon "${um_prefix}/${UM_SD_SBINDIR}/umirrord")
endif()

foreach(entry IN LISTS UM_SD_FILES)
  string(REPLACE "|" ";" entry "${entry}")
  list(GET entry 0 src)
  list(GET entry 1 kind)
  list(GET entry 2 name)

  set(dir "${UM_SD_DIR_${kind}}")
  if(UM_SD_SYS_${kind} AND um_prefix STREQUAL "/usr")
    set(dir "${UM_SD_SYS_${kind}}")
  elseif(NOT IS_ABSOLUTE "${dir}")
    set(dir "${um_prefix}/${dir}")
  endif()

  set(from "${UM_SD_SRC}/${src}")
  if(src STREQUAL "umirrord.service")
    file(READ "${from}" text)
    if(NOT text MATCHES "\nExecStart=[-@:+!]*[^ \n]*/umirrord[ \n]")
      message(FATAL_ERROR "umirrord.service: no ExecStart=.../umirrord line to point at ${um_daemon}")
    endif()
    string(REGEX REPLACE "(\nExecStart=[-@:+!]*)[^ \n]*/umirrord([ \n])" "\\1${um_daemon}\\2"
           text "${text}")
    set(from "${UM_SD_BIN}/install/umirrord.service")
    file(WRITE "${from}" "${text}")
  endif()

  if(name STREQUAL src)
    file(INSTALL DESTINATION "${dir}" TYPE FILE FILES "${from}")
  else()
    file(INSTALL DESTINATION "${dir}" TYPE FILE RENAME "${name}" FILES "${from}")
  endif()
endforeach()
