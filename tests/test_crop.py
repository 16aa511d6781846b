import numpy as np
import pytest

from animerec.recognition.crop import crop_window, framed_in_scene, report_crop, to_model_input


def test_crop_window_follows_the_report_formula():
    # side 120, off 10: columns x-10 .. x+130, rows y-20 .. y+120
    assert crop_window((50, 40, 120, 100)) == (40, 20, 140)
    assert crop_window((0, 0, 24, 24)) == (-2, -4, 28)


def test_crop_inside_image_is_a_plain_slice():
    image = np.arange(300 * 300 * 3, dtype=np.uint32).astype(np.uint8).reshape(300, 300, 3)
    crop = report_crop(image, (100, 100, 60, 60))
    assert crop.shape == (70, 70, 3)
    np.testing.assert_array_equal(crop, image[90:160, 95:165])


@pytest.mark.parametrize("box", [(0, 0, 50, 50), (270, 280, 40, 40), (-5, 10, 30, 30)])
def test_crop_at_edges_is_the_full_square_with_replicated_edges(box):
    image = np.zeros((300, 300, 3), np.uint8)
    image[:, :, 0] = np.arange(300)[None, :]  # blue grows left to right
    image[:, :, 1] = np.arange(300)[:, None]  # green grows top to bottom
    left, top, side = crop_window(box)
    crop = report_crop(image, box)
    assert crop.shape == (side, side, 3)
    expected_x = np.clip(np.arange(left, left + side), 0, 299)
    expected_y = np.clip(np.arange(top, top + side), 0, 299)
    np.testing.assert_array_equal(crop[0, :, 0], expected_x.astype(np.uint8))
    np.testing.assert_array_equal(crop[:, 0, 1], expected_y.astype(np.uint8))


def test_model_input_is_rgb_scaled_and_resized():
    crop = np.zeros((150, 150, 3), np.uint8)
    crop[:, :, 2] = 255  # pure red in BGR
    batch = to_model_input([crop, crop], 80)
    assert batch.shape == (2, 80, 80, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, 40, 40], [1.0, 0.0, 0.0])


def test_a_face_framed_in_a_scene_is_the_report_crop_of_the_box_around_it():
    """A box 1.2 times a 120 px crop: the report's square (side 144 + 2 x 12) shows the face
    whole, 24 px of scene left and right and 36 px above (the report raises its square)."""
    face = np.full((120, 120, 3), 200, np.uint8)
    scene = np.zeros((10, 10, 3), np.uint8)
    crop = framed_in_scene(face, scene, 1.2)
    assert crop.shape == (168, 168, 3)
    inside = np.argwhere(crop[:, :, 0] == 200)
    assert inside.min(axis=0).tolist() == [36, 24] and inside.max(axis=0).tolist() == [155, 143]
    assert (crop[:36] == 0).all() and (crop[:, :24] == 0).all()
    moved = framed_in_scene(face, scene, 1.2, shift=(0.1, 0.0))  # the box 12 px right: the face 12 px left
    assert np.argwhere(moved[:, :, 0] == 200).min(axis=0).tolist() == [36, 12]
    assert (framed_in_scene(face, scene, 0.6) == 200).all()  # a box inside the crop: no scene
