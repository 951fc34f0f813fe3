# EXERCISE 07-threads
my_choose_threads = """
function chooseThreads(cores, isolated) {
  // threads need shared memory, which only a cross-origin isolated page gets
  return isolated ? Math.max(1, cores) : 1;
}
"""
