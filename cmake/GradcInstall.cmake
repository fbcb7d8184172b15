# Ahead-of-time support and installation.
#
#  - lib/gradc/aot-link.txt: what `gradc build` passes to the C++ driver to
#    link a standalone trainer (the gradc libraries relative to the file,
#    so the same file serves the build tree and an install prefix; the
#    system libraries by absolute path).
#  - `cmake --install`: the gradc CLI, the runtime, trainer and trainer-main
#    libraries with their headers, and a CMake package (gradcConfig.cmake)
#    exporting gradc::gradc, gradc::runtime, gradc::trainer, gradc::aot_main
#    and the function gradc_add_model().
find_package(ZLIB REQUIRED)
find_package(Libdeflate REQUIRED)
find_package(Boost REQUIRED COMPONENTS program_options)

file(GENERATE OUTPUT ${CMAKE_ARCHIVE_OUTPUT_DIRECTORY}/gradc/aot-link.txt CONTENT
"# Link inputs of a standalone trainer (gradc build); relative paths are relative to this file.
../$<TARGET_FILE_NAME:gradc_aot_main>
../$<TARGET_FILE_NAME:gradc_trainer>
../$<TARGET_FILE_NAME:gradc_runtime>
$<TARGET_LINKER_FILE:Boost::program_options>
$<TARGET_LINKER_FILE:fmt::fmt>
$<TARGET_LINKER_FILE:ZLIB::ZLIB>
$<TARGET_LINKER_FILE:Libdeflate::Libdeflate>
-pthread
")
# `gradc build` needs the libraries it links trainers with.
add_dependencies(gradc gradc_aot_main gradc_trainer gradc_runtime)

set_target_properties(gradc_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(gradc_trainer PROPERTIES EXPORT_NAME trainer)
set_target_properties(gradc_aot_main PROPERTIES EXPORT_NAME aot_main)

install(TARGETS gradc EXPORT gradcTargets RUNTIME DESTINATION bin)
install(TARGETS gradc_runtime gradc_trainer gradc_aot_main EXPORT gradcTargets
  ARCHIVE DESTINATION lib)
install(DIRECTORY runtime/ DESTINATION include/gradc/runtime FILES_MATCHING PATTERN "*.h")
install(DIRECTORY trainer/ DESTINATION include/gradc/trainer FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_ARCHIVE_OUTPUT_DIRECTORY}/gradc/aot-link.txt DESTINATION lib/gradc)
install(EXPORT gradcTargets NAMESPACE gradc:: DESTINATION lib/cmake/gradc)

include(CMakePackageConfigHelpers)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/gradcConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/gradcConfig.cmake INSTALL_DESTINATION lib/cmake/gradc)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/gradcConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/gradcConfig.cmake
  ${CMAKE_BINARY_DIR}/cmake/gradcConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FindLibdeflate.cmake DESTINATION lib/cmake/gradc)
